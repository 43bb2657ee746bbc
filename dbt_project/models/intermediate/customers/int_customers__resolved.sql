-- One row per member_key (identity record, int_customers__identities) with its unified customer.
--
-- Records sharing any matching key (e-mail, phone, kana+postal code) are the same customer, transitively:
-- A~B by phone and B~C by kana+zip put A, B and C together (connected components of the graph record — key).
-- Components by min-label propagation, unrolled var customer_identity_max_hops times: every round each key
-- takes the smallest label of its nodes and each node the smallest label of its keys, so a chain of n
-- records settles after n − 1 rounds (records with identical keys count once, see nodes below). The singular
-- test assert_customer_identity_converged fails the build if a component is longer than that (raise the
-- var), so an unsettled label is never published.
--
-- Stability rule: unified_customer_id = 'cu_' + the first 16 hex of md5(smallest member_key in the
-- component). A new record that joins no one gets its own id; one that joins a component keeps the
-- component's id unless its own member_key sorts first (then the id moves to it); merging two components
-- keeps the id of the one with the smaller key. Unrelated arrivals never change an id.
{%- set hops = var('customer_identity_max_hops', 10) | int %}
{%- if hops < 1 %}
    {{ exceptions.raise_compiler_error("var customer_identity_max_hops must be >= 1, got " ~ hops) }}
{%- endif %}

-- identities is read more than once (members, the records of members with differing keys): scanned each time,
-- not held (D194).
with identities as not materialized (

    select member_key, email_key, phone_key, kana_zip_key
    from {{ ref('int_customers__identities') }}

),

-- One row per member (member_key: one record, or several such as a Shopify customer and the details on its
-- orders). When each key column has one value over all of its records (first = last), the member's keys are
-- simply (email, phone, kana_zip); otherwise it is a member with differing keys. Most members are one record
-- (each marketplace buyer's set of details is one): those pass as they are, and only the members with several
-- records are grouped (DECISIONS.md D225, from when every marketplace order was a record of its own).
members_with_several_records as (

    select member_key from identities group by member_key having count(*) > 1

),

members as (

    select
        member_key,
        email_key as email, email_key as last_email,
        phone_key as phone, phone_key as last_phone,
        kana_zip_key as kana_zip, kana_zip_key as last_kana_zip,
        coalesce(email_key, phone_key, kana_zip_key) is not null as has_keys,
        true as has_one_key_set
    from identities
    anti join members_with_several_records using (member_key)

    union all

    select
        member_key,
        min(email_key) as email, max(email_key) as last_email,
        min(phone_key) as phone, max(phone_key) as last_phone,
        min(kana_zip_key) as kana_zip, max(kana_zip_key) as last_kana_zip,
        coalesce(min(email_key), min(phone_key), min(kana_zip_key)) is not null as has_keys,
        email is not distinct from last_email and phone is not distinct from last_phone
            and kana_zip is not distinct from last_kana_zip as has_one_key_set
    from identities
    semi join members_with_several_records using (member_key)
    group by member_key

),

-- The nodes the rounds run over (DECISIONS.md D71, D150). Members with one set of keys are one node per set:
-- they always share a component, so a marketplace buyer's repeat orders are one node and the rounds scale
-- with buyers, not orders. A member with differing keys (a Shopify customer whose orders add e-mails) is a
-- node of its own holding all of its keys. A node is named by its smallest member_key, which belongs to no
-- other node.
key_set_nodes as (

    select email, phone, kana_zip, min(member_key) as node
    from members
    where has_keys and has_one_key_set
    group by email, phone, kana_zip

),

node_records as (

    select node, email, phone, kana_zip from key_set_nodes
    union all
    select i.member_key, i.email_key, i.phone_key, i.kana_zip_key
    from identities as i
    inner join members as m on m.member_key = i.member_key
    where m.has_keys and not m.has_one_key_set

),

node_keys as (

    select distinct node, match_key
    from (
        select node, 'email:' || email as match_key from node_records
        union all
        select node, 'phone:' || phone from node_records
        union all
        select node, 'kana_zip:' || kana_zip from node_records
    )
    where match_key is not null

),

labels_0 as (

    select distinct node, node as label from node_keys

),
{%- for i in range(1, hops + 1) %}

key_labels_{{ i }} as (

    select nk.match_key, min(l.label) as label
    from node_keys as nk
    inner join labels_{{ i - 1 }} as l on l.node = nk.node
    group by nk.match_key

),

labels_{{ i }} as (

    select l.node, least(l.label, coalesce(min(kl.label), l.label)) as label
    from labels_{{ i - 1 }} as l
    left join node_keys as nk on nk.node = l.node
    left join key_labels_{{ i }} as kl on kl.match_key = nk.match_key
    group by l.node, l.label

){{ "," }}
{%- endfor %}

member_labels as (

    select m.member_key, coalesce(l.label, m.member_key) as label
    from members as m
    left join key_set_nodes as s
        on m.has_one_key_set
        and s.email is not distinct from m.email
        and s.phone is not distinct from m.phone
        and s.kana_zip is not distinct from m.kana_zip
    left join labels_{{ hops }} as l on l.node = coalesce(s.node, m.member_key)

),

-- The id is worked out once per component, not once per member (D193).
components as (

    select label, 'cu_' || substr(md5(label), 1, 16) as unified_customer_id, count(*) as member_count
    from member_labels
    group by label

)

select
    l.member_key,
    c.unified_customer_id,
    l.label                                     as anchor_member_key,
    c.member_count
from member_labels as l
inner join components as c on c.label = l.label
