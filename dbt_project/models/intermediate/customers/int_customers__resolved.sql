-- One row per member_key (identity record, int_customers__identities) with its unified customer.
--
-- Records sharing any matching key (e-mail, phone, kana+postal code) are the same customer, transitively:
-- A~B by phone and B~C by kana+zip put A, B and C together (connected components of the graph record — key).
-- Components by min-label propagation, unrolled var customer_identity_max_hops times: every round each key
-- takes the smallest label of its records and each record the smallest label of its keys, so a chain of n
-- records settles after n − 1 rounds (records with identical keys count once, see member_signatures). The singular test assert_customer_identity_converged fails the build
-- if a component is longer than that (raise the var), so an unsettled label is never published.
--
-- Stability rule: unified_customer_id = 'cu_' + the first 16 hex of md5(smallest member_key in the
-- component). A new record that joins no one gets its own id; one that joins a component keeps the
-- component's id unless its own member_key sorts first (then the id moves to it); merging two components
-- keeps the id of the one with the smaller key. Unrelated arrivals never change an id.
{%- set hops = var('customer_identity_max_hops', 10) | int %}
{%- if hops < 1 %}
    {{ exceptions.raise_compiler_error("var customer_identity_max_hops must be >= 1, got " ~ hops) }}
{%- endif %}

with identities as (

    select member_key, email_key, phone_key, kana_zip_key
    from {{ ref('int_customers__identities') }}

),

members as (

    select distinct member_key from identities

),

member_keys as (

    select distinct member_key, match_key
    from (
        select member_key, 'email:' || email_key as match_key from identities
        union all
        select member_key, 'phone:' || phone_key from identities
        union all
        select member_key, 'kana_zip:' || kana_zip_key from identities
    )
    where match_key is not null

),

-- Records with the same set of matching keys touch the same keys, so they always share a component: the
-- rounds run over those groups (signatures), each starting from its smallest member_key, not over every
-- record. A marketplace buyer's orders are one signature, so the rounds scale with buyers, not orders
-- (DECISIONS.md D71). Records without any key have no signature and stay alone.
member_signatures as (

    select member_key, md5(string_agg(match_key, chr(31) order by match_key)) as signature
    from member_keys
    group by member_key

),

signatures as (

    select signature, min(member_key) as first_member_key
    from member_signatures
    group by signature

),

signature_keys as (

    select s.signature, mk.match_key
    from signatures as s
    inner join member_keys as mk on mk.member_key = s.first_member_key

),

labels_0 as (

    select signature, first_member_key as label from signatures

),
{%- for i in range(1, hops + 1) %}

key_labels_{{ i }} as (

    select sk.match_key, min(l.label) as label
    from signature_keys as sk
    inner join labels_{{ i - 1 }} as l on l.signature = sk.signature
    group by sk.match_key

),

labels_{{ i }} as (

    select l.signature, least(l.label, coalesce(min(kl.label), l.label)) as label
    from labels_{{ i - 1 }} as l
    left join signature_keys as sk on sk.signature = l.signature
    left join key_labels_{{ i }} as kl on kl.match_key = sk.match_key
    group by l.signature, l.label

){{ "," }}
{%- endfor %}

member_labels as (

    select m.member_key, coalesce(l.label, m.member_key) as label
    from members as m
    left join member_signatures as ms on ms.member_key = m.member_key
    left join labels_{{ hops }} as l on l.signature = ms.signature

),

component_sizes as (

    select label, count(*) as member_count from member_labels group by label

)

select
    l.member_key,
    'cu_' || substr(md5(l.label), 1, 16)        as unified_customer_id,
    l.label                                     as anchor_member_key,
    c.member_count
from member_labels as l
inner join component_sizes as c on c.label = l.label
