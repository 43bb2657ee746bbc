/* ichigen_pagescan: GraphQL answer pages (compact JSON bytes) -> column buffers for landing, in one pass.
 *
 * The fast path of ingestion.columnar (DECISIONS.md D243). It accepts only what it can map exactly as the DuckDB
 * statement would: compact JSON inside the nodes (no whitespace between tokens, integers of at most 18 digits,
 * no fractions or exponents; outside them any JSON number), every declared value of the expected JSON type and
 * form, no repeated or escaped declared key. Every valid escape is decoded; a node holding one DuckDB's writer
 * would write otherwise gets its `_raw` written again in DuckDB's form (put_canonical). Anything else -- bad
 * input included -- makes `scan` return None and the caller maps the pages through DuckDB, which also words the
 * quarantine reasons.
 * So this file never decides that a record is bad; it only proves that every record of the call is good.
 *
 * The plan (built by ingestion/pagescan.py from a NodeMapping) is a tree of tuples:
 *   plan  = (connection_path: tuple[bytes, ...], shape, column_kinds: tuple[(kind, level), ...])
 *   shape = tuple[(key: bytes, kind: int, column: int, required: bool, child: shape | None), ...]
 * Kinds: 0 text, 1 timestamp, 2 money, 3 int, 4 text list, 5 object (child), 6 list of objects (child, column =
 * the list column; the objects' leaves are columns of the next level).
 *
 * The result is a list with one tuple per column, then one for the node texts (`_raw`):
 *   (count, validity, offsets | None (int32), data | None, child_offsets | None, child_data | None)
 * each buffer handed over without a copy as (address, length, capsule that frees it), validity 1 byte per row;
 * `data` holds UTF-8 text (text kinds, `_raw`) or int64 values (timestamp as UTC microseconds, int), and a
 * text list keeps its strings in the child buffers. Every read is bounded by the page's end; nesting is bounded
 * by MAX_DEPTH. The GIL is released while scanning.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { K_TEXT = 0, K_TIMESTAMP = 1, K_MONEY = 2, K_INT = 3, K_TEXT_LIST = 4, K_OBJECT = 5, K_OBJECT_LIST = 6 };
enum { MAX_DEPTH = 64, MAX_KEYS = 64, MAX_LEVELS = 4, MAX_PATH = 8 };
#define MAX_OFFSET 0x7fffffffLL /* int32 Arrow offsets */

typedef struct Shape Shape;
typedef struct {
    char *key;
    Py_ssize_t key_len;
    int kind, column, required;
    Shape *child;
} Entry;
struct Shape {
    int n;
    Entry entries[MAX_KEYS];
};

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} Buf;

typedef struct {
    int kind, level;
    int64_t count; /* rows appended */
    Buf valid, offsets, data, child_offsets, child_data;
    int64_t child_count;
} Column;

typedef struct {
    const unsigned char *p, *end;
    int depth;
    int in_node; /* inside a node every number must be a canonical integer (it is part of `_raw`) */
    int rewrite; /* the node being scanned holds an escape DuckDB would write otherwise */
    Column *columns;
    int ncolumns;
    int64_t rows[MAX_LEVELS]; /* rows started per level */
} Scan;

/* -- buffers ------------------------------------------------------------------------------------------------- */
static int buf_reserve(Buf *b, size_t more) {
    if (b->failed) return 0;
    if (b->len + more <= b->cap) return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more) cap *= 2;
    char *grown = realloc(b->buf, cap);
    if (!grown) { b->failed = 1; return 0; }
    b->buf = grown;
    b->cap = cap;
    return 1;
}
static int buf_put(Buf *b, const void *src, size_t n) {
    if (n == 0) return !b->failed; /* (memcpy into a buffer not yet allocated) */
    if (!buf_reserve(b, n)) return 0;
    memcpy(b->buf + b->len, src, n);
    b->len += n;
    return 1;
}
static int buf_put_i32(Buf *b, int64_t v) {
    if (v > MAX_OFFSET) return 0;
    int32_t x = (int32_t)v;
    return buf_put(b, &x, 4);
}
static int buf_put_i64(Buf *b, int64_t v) { return buf_put(b, &v, 8); }
static int buf_put_u8(Buf *b, uint8_t v) { return buf_put(b, &v, 1); }
static void buf_free(Buf *b) { free(b->buf); b->buf = NULL; b->len = b->cap = 0; }

/* -- canonical JSON tokens ----------------------------------------------------------------------------------- */
static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static int hex4(const unsigned char *p) { /* the four hex digits of a \u escape, or -1 */
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

/* One UTF-8 sequence starting at p (a byte >= 0x80): its length, or 0 when invalid (overlong, surrogate, >
 * U+10FFFF, truncated). */
static int utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned char c = p[0];
    if (c >= 0xC2 && c <= 0xDF) {
        return (end - p >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && p[1] >= 0xA0) return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (end - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0;
        if (c == 0xF4 && p[1] >= 0x90) return 0;
        return 4;
    }
    return 0;
}

/* Bytes a string cannot simply pass over: the quote, the backslash, control characters, non-ASCII. */
static unsigned char SPECIAL[256];
static void init_special(void) {
    for (int c = 0; c < 256; c++) SPECIAL[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
}

/* The escape at p (on its backslash, within a string ending before `end`): the code point it stands for and
 * its length (a surrogate pair is one escape of 12 bytes), or 0 when it is not a valid JSON escape (a lone
 * surrogate included). *canonical: whether DuckDB's JSON writer would write this very escape again -- \" \\ \b
 * \f \n \r \t, and \u00XX in upper-case hex for the other control characters. */
static int read_escape(const unsigned char *p, const unsigned char *end, uint32_t *code, int *canonical) {
    if (end - p < 2) return 0;
    *canonical = 1;
    switch (p[1]) {
        case '"': *code = '"'; return 2;
        case '\\': *code = '\\'; return 2;
        case 'b': *code = '\b'; return 2;
        case 'f': *code = '\f'; return 2;
        case 'n': *code = '\n'; return 2;
        case 'r': *code = '\r'; return 2;
        case 't': *code = '\t'; return 2;
        case '/': *code = '/'; *canonical = 0; return 2;
        case 'u': break;
        default: return 0;
    }
    if (end - p < 6) return 0;
    int v = hex4(p + 2);
    if (v < 0) return 0;
    if (v >= 0xDC00 && v <= 0xDFFF) return 0; /* a low surrogate first */
    if (v >= 0xD800 && v <= 0xDBFF) {
        if (end - p < 12 || p[6] != '\\' || p[7] != 'u') return 0;
        int low = hex4(p + 8);
        if (low < 0xDC00 || low > 0xDFFF) return 0;
        *code = 0x10000 + (((uint32_t)v - 0xD800) << 10) + ((uint32_t)low - 0xDC00);
        *canonical = 0;
        return 12;
    }
    *code = (uint32_t)v;
    int short_form = v == 0x08 || v == 0x09 || v == 0x0A || v == 0x0C || v == 0x0D;
    *canonical = v < 0x20 && !short_form && p[2] == '0' && p[3] == '0' && hexval(p[4]) >= 0 && p[4] <= 'F'
                 && (p[5] <= '9' || (p[5] >= 'A' && p[5] <= 'F'));
    return 6;
}

/* A string at s->p (on its opening quote). On success: s->p after the closing quote, `start` and `len` the raw
 * content, *escaped whether it holds escapes; s->rewrite is set when some escape is not in DuckDB's own form
 * (then the node's `_raw` is written again in that form, as DuckDB would). */
static int scan_string(Scan *s, const unsigned char **start, size_t *len, int *escaped) {
    const unsigned char *p = s->p, *end = s->end;
    if (p >= end || *p != '"') return 0;
    p++;
    *start = p;
    *escaped = 0;
    while (p < end) {
        while (p < end && !SPECIAL[*p]) p++; /* the plain ASCII run */
        if (p >= end) break;
        unsigned char c = *p;
        if (c == '"') {
            *len = (size_t)(p - *start);
            s->p = p + 1;
            return 1;
        }
        if (c < 0x20) return 0;
        if (c == '\\') {
            uint32_t code;
            int canonical, n = read_escape(p, end, &code, &canonical);
            if (!n) return 0;
            *escaped = 1;
            if (!canonical) s->rewrite = 1;
            p += n;
            continue;
        }
        int n = utf8_len(p, end);
        if (!n) return 0;
        p += n;
    }
    return 0;
}

static int put_utf8(Buf *b, uint32_t code) {
    unsigned char out[4];
    int n;
    if (code < 0x80) { out[0] = (unsigned char)code; n = 1; }
    else if (code < 0x800) { out[0] = (unsigned char)(0xC0 | (code >> 6)); out[1] = (unsigned char)(0x80 | (code & 0x3F)); n = 2; }
    else if (code < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (code >> 12));
        out[1] = (unsigned char)(0x80 | ((code >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (code & 0x3F));
        n = 3;
    } else {
        out[0] = (unsigned char)(0xF0 | (code >> 18));
        out[1] = (unsigned char)(0x80 | ((code >> 12) & 0x3F));
        out[2] = (unsigned char)(0x80 | ((code >> 6) & 0x3F));
        out[3] = (unsigned char)(0x80 | (code & 0x3F));
        n = 4;
    }
    return buf_put(b, out, (size_t)n);
}

/* Append the string's value (escapes decoded; the string was checked by scan_string) to b. */
static int put_unescaped(Buf *b, const unsigned char *p, size_t len, int escaped) {
    if (!escaped) return buf_put(b, p, len);
    const unsigned char *end = p + len;
    while (p < end) {
        const unsigned char *run = p;
        while (p < end && *p != '\\') p++;
        if (!buf_put(b, run, (size_t)(p - run))) return 0;
        if (p >= end) break;
        uint32_t code;
        int canonical, n = read_escape(p, end, &code, &canonical);
        if (!n || !put_utf8(b, code)) return 0;
        p += n;
    }
    return 1;
}

/* Append the node text [p, end) -- already checked -- with every escape in DuckDB's own form: what DuckDB
 * writes for `_raw` when the source escaped otherwise (`\u0026`, `\/`, `\u00e9`, a surrogate pair...). */
static int put_canonical(Buf *b, const unsigned char *p, const unsigned char *end) {
    static const char hex[] = "0123456789ABCDEF";
    int in_string = 0;
    while (p < end) {
        const unsigned char *run = p;
        while (p < end && *p != '"' && *p != '\\') p++;
        if (!buf_put(b, run, (size_t)(p - run))) return 0;
        if (p >= end) break;
        if (*p == '"') {
            in_string = !in_string;
            if (!buf_put_u8(b, '"')) return 0;
            p++;
            continue;
        }
        uint32_t code; /* a backslash: only inside strings */
        int canonical, n = read_escape(p, end, &code, &canonical);
        if (!n || !in_string) return 0;
        p += n;
        if (canonical) {
            if (!buf_put(b, p - n, (size_t)n)) return 0;
        } else if (code == '"' || code == '\\') {
            unsigned char out[2] = {'\\', (unsigned char)code};
            if (!buf_put(b, out, 2)) return 0;
        } else if (code < 0x20) {
            const char *short_forms = "\b\f\n\r\t", *letters = "bfnrt";
            const char *at = code ? strchr(short_forms, (int)code) : NULL;
            if (at) {
                unsigned char out[2] = {'\\', (unsigned char)letters[at - short_forms]};
                if (!buf_put(b, out, 2)) return 0;
            } else {
                unsigned char out[6] = {'\\', 'u', '0', '0', (unsigned char)hex[code >> 4], (unsigned char)hex[code & 15]};
                if (!buf_put(b, out, 6)) return 0;
            }
        } else if (!put_utf8(b, code)) {
            return 0;
        }
    }
    return 1;
}

/* A canonical integer: -?(0|[1-9][0-9]*), at most 18 digits, "-0" refused; not followed by . e E or a digit. */
static int scan_int(Scan *s, int64_t *value) {
    const unsigned char *p = s->p, *end = s->end;
    int negative = 0;
    if (p < end && *p == '-') { negative = 1; p++; }
    if (p >= end || *p < '0' || *p > '9') return 0;
    const unsigned char *digits = p;
    int64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (p - digits == 18) return 0; /* a 19th digit: beyond what every int64 holds */
        v = v * 10 + (*p - '0');
        p++;
    }
    if ((digits[0] == '0' && p - digits > 1) || (negative && v == 0)) return 0;
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) return 0;
    *value = negative ? -v : v;
    s->p = p;
    return 1;
}

/* Any JSON number (outside the nodes, e.g. Shopify's `extensions.cost.throttleStatus.restoreRate: 100.0`). */
static int scan_number(Scan *s) {
    const unsigned char *p = s->p, *end = s->end;
    if (p < end && *p == '-') p++;
    if (p >= end || *p < '0' || *p > '9') return 0;
    if (*p == '0') p++;
    else while (p < end && *p >= '0' && *p <= '9') p++;
    if (p < end && *p == '.') {
        const unsigned char *fraction = ++p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        if (p == fraction) return 0;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        const unsigned char *exponent = p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        if (p == exponent) return 0;
    }
    s->p = p;
    return 1;
}

static int scan_literal(Scan *s, const char *word, size_t n) {
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return 0;
    s->p += n;
    return 1;
}

/* After a member or element: `,` -> MORE, the closing bracket -> CLOSED (both consumed), else BAD. */
enum { BAD = 0, MORE = 1, CLOSED = 2 };
static int after_item(Scan *s, unsigned char close) {
    if (s->p >= s->end) return BAD;
    if (*s->p == ',') { s->p++; return MORE; }
    if (*s->p == close) { s->p++; return CLOSED; }
    return BAD;
}

/* A member's key and its colon. */
static int scan_key(Scan *s, const unsigned char **key, size_t *len, int *escaped) {
    if (!scan_string(s, key, len, escaped) || s->p >= s->end || *s->p != ':') return 0;
    s->p++;
    return 1;
}

static int skip_value(Scan *s);

/* An object (close '}': members with keys) or an array (close ']'), skipped but checked. */
static int skip_container(Scan *s, unsigned char close) {
    if (++s->depth > MAX_DEPTH) return 0;
    s->p++; /* { or [ */
    if (s->p < s->end && *s->p == close) { s->p++; s->depth--; return 1; }
    for (;;) {
        const unsigned char *k; size_t kl; int ke;
        if (close == '}' && !scan_key(s, &k, &kl, &ke)) return 0;
        if (!skip_value(s)) return 0;
        int next = after_item(s, close);
        if (next == MORE) continue;
        if (next == CLOSED) { s->depth--; return 1; }
        return 0;
    }
}

static int skip_value(Scan *s) {
    if (s->p >= s->end) return 0;
    const unsigned char *k; size_t kl; int ke; int64_t v;
    switch (*s->p) {
        case '{': return skip_container(s, '}');
        case '[': return skip_container(s, ']');
        case '"': return scan_string(s, &k, &kl, &ke);
        case 't': return scan_literal(s, "true", 4);
        case 'f': return scan_literal(s, "false", 5);
        case 'n': return scan_literal(s, "null", 4);
        default: return s->in_node ? scan_int(s, &v) : scan_number(s);
    }
}

/* -- values ---------------------------------------------------------------------------------------------------- */
static int is_null(Scan *s) {
    if (s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0) { s->p += 4; return 1; }
    return 0;
}

static int digits(const unsigned char *p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

static int64_t days_from_civil(int64_t y, int m, int d) { /* days since 1970-01-01, proleptic Gregorian */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+HH:MM|-HH:MM) -> UTC microseconds since the epoch. The narrow form every
 * channel sends; whatever else the DuckDB path accepts (a space, no seconds, 7-9 digits, other offsets) goes
 * there. */
static int parse_timestamp(const unsigned char *p, size_t n, int64_t *out) {
    int year, month, day, hour, minute, second, frac = 0, frac_digits = 0;
    if (n < 20) return 0;
    if (!digits(p, 4, &year) || p[4] != '-' || !digits(p + 5, 2, &month) || p[7] != '-' || !digits(p + 8, 2, &day)
        || p[10] != 'T' || !digits(p + 11, 2, &hour) || p[13] != ':' || !digits(p + 14, 2, &minute)
        || p[16] != ':' || !digits(p + 17, 2, &second))
        return 0;
    size_t i = 19;
    if (i < n && p[i] == '.') {
        i++;
        while (i < n && p[i] >= '0' && p[i] <= '9') {
            if (++frac_digits > 6) return 0;
            frac = frac * 10 + (p[i] - '0');
            i++;
        }
        if (!frac_digits) return 0;
        for (int k = frac_digits; k < 6; k++) frac *= 10;
    }
    int64_t offset_minutes = 0;
    if (i + 1 == n && p[i] == 'Z') {
        i++;
    } else if (i + 6 == n && (p[i] == '+' || p[i] == '-') && p[i + 3] == ':') {
        int oh, om;
        if (!digits(p + i + 1, 2, &oh) || !digits(p + i + 4, 2, &om) || oh > 14 || om > 59) return 0;
        offset_minutes = (p[i] == '-' ? -1 : 1) * (oh * 60 + om);
        i += 6;
    } else {
        return 0;
    }
    static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (year < 1000 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return 0;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (day > month_days[month - 1] + (month == 2 && leap)) return 0;
    int64_t seconds = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
                      - offset_minutes * 60;
    *out = seconds * 1000000 + frac;
    return 1;
}

/* -?\d+(\.\d+)? : a money amount the DuckDB path lands unchanged (trim is a no-op, the decimal check passes). */
static int is_plain_decimal(const unsigned char *p, size_t n) {
    size_t i = 0;
    if (i < n && p[i] == '-') i++;
    size_t start = i;
    while (i < n && p[i] >= '0' && p[i] <= '9') i++;
    if (i == start) return 0;
    if (i == n) return 1;
    if (p[i] != '.') return 0;
    start = ++i;
    while (i < n && p[i] >= '0' && p[i] <= '9') i++;
    return i > start && i == n;
}

static int set_null(Column *c) {
    c->count++;
    if (!buf_put_u8(&c->valid, 0)) return 0;
    if (c->kind == K_TEXT || c->kind == K_MONEY || c->kind == K_TEXT_LIST || c->kind == K_OBJECT_LIST)
        return buf_put_i32(&c->offsets, c->kind == K_TEXT || c->kind == K_MONEY ? (int64_t)c->data.len
                                                                                 : c->child_count);
    return buf_put_i64(&c->data, 0);
}

static int scan_object(Scan *s, const Shape *shape, int level);
static int scan_record(Scan *s, const Shape *shape, int level);

/* A text list's element: a string, appended to the list's child buffers. */
static int scan_list_text(Scan *s, Column *c) {
    const unsigned char *v; size_t n; int escaped;
    return scan_string(s, &v, &n, &escaped) && put_unescaped(&c->child_data, v, n, escaped)
           && buf_put_i32(&c->child_offsets, (int64_t)(c->child_data.len));
}

/* A record list's element: an object, one row of the next level. */
static int scan_list_record(Scan *s, const Shape *shape, int level) {
    if (s->p >= s->end || *s->p != '{') return 0;
    s->rows[level]++;
    return scan_record(s, shape, level);
}

/* The value at s->p for entry e (a declared key not yet seen in this object). */
static int scan_entry(Scan *s, const Entry *e, int level) {
    Column *c = e->column >= 0 ? &s->columns[e->column] : NULL;
    const unsigned char *v; size_t n; int escaped; int64_t x;
    if (e->kind == K_OBJECT) {
        if (is_null(s)) return 1; /* its leaves stay unset: NULL */
        if (s->p >= s->end || *s->p != '{') return 0;
        return scan_object(s, e->child, level);
    }
    if (is_null(s)) return !e->required && set_null(c);
    switch (e->kind) {
        case K_TEXT:
        case K_MONEY:
            if (!scan_string(s, &v, &n, &escaped)) return 0;
            if (e->required && n == 0) return 0;
            if (e->kind == K_MONEY && (escaped || !is_plain_decimal(v, n))) return 0;
            c->count++;
            return buf_put_u8(&c->valid, 1) && put_unescaped(&c->data, v, n, escaped)
                   && buf_put_i32(&c->offsets, (int64_t)c->data.len);
        case K_TIMESTAMP:
            if (!scan_string(s, &v, &n, &escaped) || escaped || !parse_timestamp(v, n, &x)) return 0;
            c->count++;
            return buf_put_u8(&c->valid, 1) && buf_put_i64(&c->data, x);
        case K_INT:
            if (!scan_int(s, &x)) return 0;
            c->count++;
            return buf_put_u8(&c->valid, 1) && buf_put_i64(&c->data, x);
        case K_TEXT_LIST: /* a list of strings, or of records whose leaves are the next level's columns */
        case K_OBJECT_LIST:
            if (s->p >= s->end || *s->p != '[' || level + 1 >= MAX_LEVELS) return 0;
            s->p++;
            if (s->p < s->end && *s->p == ']') {
                s->p++;
            } else {
                for (;;) {
                    if (!(e->kind == K_TEXT_LIST ? scan_list_text(s, c) : scan_list_record(s, e->child, level + 1)))
                        return 0;
                    c->child_count++;
                    int next = after_item(s, ']');
                    if (next == MORE) continue;
                    if (next == CLOSED) break;
                    return 0;
                }
            }
            c->count++;
            return buf_put_u8(&c->valid, 1) && buf_put_i32(&c->offsets, c->child_count);
        default:
            return 0;
    }
}

/* Leaves of a shape that no key set this row: NULL (a required one fails). */
static int fill_unset(Scan *s, const Shape *shape, int level) {
    for (int i = 0; i < shape->n; i++) {
        const Entry *e = &shape->entries[i];
        if (e->kind == K_OBJECT) {
            if (!fill_unset(s, e->child, level)) return 0;
            continue;
        }
        Column *c = &s->columns[e->column];
        if (c->count < s->rows[level]) {
            if (e->required || !set_null(c)) return 0;
        }
    }
    return 1;
}

/* An object at s->p against `shape`; for a record (a node or a nested list's element) the caller then fills
 * what it left unset. A declared key seen twice fails (which of the two DuckDB would take is not ours to guess). */
static int scan_object(Scan *s, const Shape *shape, int level) {
    if (++s->depth > MAX_DEPTH) return 0;
    uint64_t seen = 0;
    s->p++; /* { */
    if (s->p < s->end && *s->p == '}') {
        s->p++;
    } else {
        for (;;) {
            const unsigned char *k; size_t kl; int ke;
            if (!scan_key(s, &k, &kl, &ke)) return 0;
            if (ke) return 0; /* an escaped key: which declared key it names is DuckDB's to say */
            int found = -1;
            for (int i = 0; i < shape->n && found < 0; i++) {
                const Entry *e = &shape->entries[i];
                if ((size_t)e->key_len == kl && memcmp(e->key, k, kl) == 0) found = i;
            }
            if (found < 0) {
                if (!skip_value(s)) return 0;
            } else {
                if (seen & (1ULL << found)) return 0;
                seen |= 1ULL << found;
                if (!scan_entry(s, &shape->entries[found], level)) return 0;
            }
            int next = after_item(s, '}');
            if (next == MORE) continue;
            if (next == CLOSED) break;
            return 0;
        }
    }
    s->depth--;
    return 1;
}

/* A record object: the object, then its unset leaves. */
static int scan_record(Scan *s, const Shape *shape, int level) {
    return scan_object(s, shape, level) && fill_unset(s, shape, level);
}

typedef struct {
    const char *keys[MAX_PATH];
    Py_ssize_t lens[MAX_PATH];
    int n; /* path keys, then "nodes" */
} Path;

/* The nodes array at s->p: every node scanned as a record, its text kept as `_raw`. */
static int scan_nodes(Scan *s, const Shape *shape, Column *raw) {
    if (s->p >= s->end || *s->p != '[') return 0;
    s->p++;
    if (s->p < s->end && *s->p == ']') { s->p++; return 1; }
    for (;;) {
        if (s->p >= s->end || *s->p != '{') return 0;
        const unsigned char *start = s->p;
        s->rows[0]++;
        s->in_node = 1;
        s->rewrite = 0;
        if (!scan_record(s, shape, 0)) return 0;
        s->in_node = 0;
        raw->count++;
        if (!(s->rewrite ? put_canonical(&raw->data, start, s->p) : buf_put(&raw->data, start, (size_t)(s->p - start)))
            || !buf_put_i32(&raw->offsets, (int64_t)raw->data.len) || !buf_put_u8(&raw->valid, 1))
            return 0;
        int next = after_item(s, ']');
        if (next == MORE) continue;
        return next == CLOSED;
    }
}

/* The object at s->p on the connection path at `step`: its key `path[step]` exactly once (the last one, "nodes",
 * holds the nodes array; the others an object to descend into), every other key skipped. */
static int scan_path(Scan *s, const Path *path, int step, const Shape *shape, Column *raw) {
    if (s->p >= s->end || *s->p != '{' || ++s->depth > MAX_DEPTH) return 0;
    s->p++;
    int seen = 0;
    if (s->p < s->end && *s->p == '}') return 0;
    for (;;) {
        const unsigned char *k; size_t kl; int ke;
        if (!scan_key(s, &k, &kl, &ke)) return 0;
        if (ke) return 0;
        if ((size_t)path->lens[step] == kl && memcmp(path->keys[step], k, kl) == 0) {
            if (seen++) return 0;
            if (step + 1 == path->n ? !scan_nodes(s, shape, raw) : !scan_path(s, path, step + 1, shape, raw))
                return 0;
        } else if (!skip_value(s)) {
            return 0;
        }
        int next = after_item(s, '}');
        if (next == MORE) continue;
        if (next == CLOSED) break;
        return 0;
    }
    s->depth--;
    return seen == 1;
}

static int is_space(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

/* One page: the whole document (white space allowed only around it). */
static int scan_page(Scan *s, const Path *path, const Shape *shape, Column *raw) {
    while (s->p < s->end && is_space(*s->p)) s->p++;
    if (!scan_path(s, path, 0, shape, raw)) return 0;
    while (s->p < s->end && is_space(*s->p)) s->p++;
    return s->p == s->end;
}

/* -- plan ------------------------------------------------------------------------------------------------------ */
static void free_shape(Shape *shape) {
    if (!shape) return;
    for (int i = 0; i < shape->n; i++) {
        free(shape->entries[i].key);
        free_shape(shape->entries[i].child);
    }
    free(shape);
}

static Shape *build_shape(PyObject *spec, int ncolumns) {
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) > MAX_KEYS) {
        PyErr_SetString(PyExc_ValueError, "shape: a tuple of at most 64 entries");
        return NULL;
    }
    Shape *shape = calloc(1, sizeof(Shape));
    if (!shape) { PyErr_NoMemory(); return NULL; }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(spec); i++) {
        PyObject *item = PyTuple_GET_ITEM(spec, i), *key, *child;
        char *key_text; Py_ssize_t key_len;
        Entry *e = &shape->entries[i];
        shape->n = (int)i + 1;
        if (!PyArg_ParseTuple(item, "OiipO", &key, &e->kind, &e->column, &e->required, &child)
            || PyBytes_AsStringAndSize(key, &key_text, &key_len) < 0) {
            free_shape(shape);
            return NULL;
        }
        e->key = malloc((size_t)key_len + 1);
        if (!e->key) { free_shape(shape); PyErr_NoMemory(); return NULL; }
        memcpy(e->key, key_text, (size_t)key_len);
        e->key_len = key_len;
        int nested = e->kind == K_OBJECT || e->kind == K_OBJECT_LIST;
        if (e->kind < K_TEXT || e->kind > K_OBJECT_LIST || (nested != (child != Py_None))
            || (e->kind != K_OBJECT && (e->column < 0 || e->column >= ncolumns))) {
            PyErr_SetString(PyExc_ValueError, "shape: bad entry");
            free_shape(shape);
            return NULL;
        }
        if (nested && !(e->child = build_shape(child, ncolumns))) { free_shape(shape); return NULL; }
    }
    return shape;
}

static void free_capsule(PyObject *capsule) { free(PyCapsule_GetPointer(capsule, "ichigen_pagescan.buffer")); }

/* A buffer handed to Python without a copy: (address, length, capsule that frees it), for pyarrow's
 * foreign_buffer; None when the column kind has no such buffer. */
static PyObject *buffer_or_none(Buf *b, int wanted) {
    if (!wanted) Py_RETURN_NONE;
    if (!b->buf && !buf_reserve(b, 1)) return PyErr_NoMemory();
    PyObject *capsule = PyCapsule_New(b->buf, "ichigen_pagescan.buffer", free_capsule);
    if (!capsule) return NULL;
    PyObject *item = Py_BuildValue("(KnN)", (unsigned long long)(uintptr_t)b->buf, (Py_ssize_t)b->len, capsule);
    b->buf = NULL; /* the capsule owns it now (even if building the tuple failed: it was stolen) */
    b->len = b->cap = 0;
    return item;
}

static PyObject *column_result(Column *c) {
    int text = c->kind == K_TEXT || c->kind == K_MONEY;
    int listed = c->kind == K_TEXT_LIST || c->kind == K_OBJECT_LIST;
    return Py_BuildValue("(LNNNNN)", (long long)c->count, buffer_or_none(&c->valid, 1),
                         buffer_or_none(&c->offsets, text || listed),
                         buffer_or_none(&c->data, c->kind != K_TEXT_LIST && c->kind != K_OBJECT_LIST),
                         buffer_or_none(&c->child_offsets, c->kind == K_TEXT_LIST),
                         buffer_or_none(&c->child_data, c->kind == K_TEXT_LIST));
}

/* scan(pages, plan) -> list of column tuples, or None when some page is outside the fast path. */
static PyObject *scan(PyObject *self, PyObject *args) {
    PyObject *pages, *plan, *path_spec, *shape_spec, *kinds;
    (void)self;
    if (!PyArg_ParseTuple(args, "OO", &pages, &plan)) return NULL;
    if (!PyArg_ParseTuple(plan, "OOO", &path_spec, &shape_spec, &kinds)) return NULL;
    if (!PyTuple_Check(path_spec) || !PyTuple_Check(kinds)) {
        PyErr_SetString(PyExc_TypeError, "plan: (path tuple, shape, kinds tuple)");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(pages, "pages must be a sequence");
    if (!seq) return NULL;
    Py_ssize_t npages = PySequence_Fast_GET_SIZE(seq);
    int ncolumns = (int)PyTuple_GET_SIZE(kinds);
    Path path = {.n = 0};
    Shape *shape = NULL;
    Column *columns = NULL;
    Py_buffer *views = NULL;
    Py_ssize_t nviews = 0;
    PyObject *result = NULL;

    if (PyTuple_GET_SIZE(path_spec) + 1 > MAX_PATH) { PyErr_SetString(PyExc_ValueError, "path too long"); goto done; }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(path_spec); i++) {
        char *k;
        if (PyBytes_AsStringAndSize(PyTuple_GET_ITEM(path_spec, i), &k, &path.lens[i]) < 0) goto done;
        path.keys[i] = k;
        path.n++;
    }
    path.keys[path.n] = "nodes";
    path.lens[path.n] = 5;
    path.n++;
    if (!(shape = build_shape(shape_spec, ncolumns))) goto done;
    columns = calloc((size_t)ncolumns + 1, sizeof(Column));
    views = calloc((size_t)(npages ? npages : 1), sizeof(Py_buffer));
    if (!columns || !views) { PyErr_NoMemory(); goto done; }
    for (int i = 0; i < ncolumns; i++) {
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(kinds, i), "ii", &columns[i].kind, &columns[i].level)) goto done;
        if (columns[i].level < 0 || columns[i].level >= MAX_LEVELS) {
            PyErr_SetString(PyExc_ValueError, "column level out of range");
            goto done;
        }
    }
    Column *raw = &columns[ncolumns];
    raw->kind = K_TEXT;
    size_t total = 0;
    for (Py_ssize_t i = 0; i < npages; i++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, i), &views[i], PyBUF_SIMPLE) < 0) goto done;
        nviews++;
        total += (size_t)views[i].len;
    }
    int ok = 1;
    Py_BEGIN_ALLOW_THREADS
    ok = buf_reserve(&raw->data, total); /* the nodes' texts are at most the pages */
    for (int i = 0; ok && i <= ncolumns; i++) {
        Column *c = &columns[i];
        ok = (c->kind != K_TEXT && c->kind != K_MONEY && c->kind != K_TEXT_LIST && c->kind != K_OBJECT_LIST)
             || buf_put_i32(&c->offsets, 0);
        if (ok && c->kind == K_TEXT_LIST) ok = buf_put_i32(&c->child_offsets, 0);
    }
    Scan s = {.columns = columns, .ncolumns = ncolumns};
    for (Py_ssize_t i = 0; ok && i < npages; i++) {
        s.p = views[i].buf;
        s.end = s.p + views[i].len;
        s.depth = 0;
        ok = scan_page(&s, &path, shape, raw);
    }
    for (int i = 0; ok && i <= ncolumns; i++) {
        Column *c = &columns[i];
        ok = !c->valid.failed && !c->offsets.failed && !c->data.failed && !c->child_offsets.failed
             && !c->child_data.failed && c->count == (i == ncolumns ? s.rows[0] : s.rows[c->level]);
    }
    Py_END_ALLOW_THREADS
    if (!ok) {
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    result = PyList_New(ncolumns + 1);
    if (!result) goto done;
    for (int i = 0; i <= ncolumns; i++) {
        PyObject *item = column_result(&columns[i]);
        if (!item) { Py_CLEAR(result); goto done; }
        PyList_SET_ITEM(result, i, item);
    }
done:
    for (Py_ssize_t i = 0; i < nviews; i++) PyBuffer_Release(&views[i]);
    free(views);
    if (columns) {
        for (int i = 0; i <= ncolumns; i++) {
            buf_free(&columns[i].valid); buf_free(&columns[i].offsets); buf_free(&columns[i].data);
            buf_free(&columns[i].child_offsets); buf_free(&columns[i].child_data);
        }
        free(columns);
    }
    free_shape(shape);
    Py_DECREF(seq);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "scan(pages, plan) -> list of column buffers, or None (outside the fast path)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "ichigen_pagescan", .m_size = -1, .m_methods = methods,
};

PyMODINIT_FUNC PyInit_ichigen_pagescan(void) {
    init_special();
    return PyModule_Create(&module);
}
