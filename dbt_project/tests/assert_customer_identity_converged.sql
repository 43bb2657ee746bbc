-- Identity resolution settled: every matching key (e-mail, phone, kana+zip) belongs to exactly one unified
-- customer. Rows = keys still split across customers, i.e. a component longer than var
-- customer_identity_max_hops (raise it).
select k.match_key, count(distinct r.unified_customer_id) as unified_ids
from (
    select member_key, 'email:' || email_key as match_key from {{ ref('int_customers__identities') }}
    union all
    select member_key, 'phone:' || phone_key from {{ ref('int_customers__identities') }}
    union all
    select member_key, 'kana_zip:' || kana_zip_key from {{ ref('int_customers__identities') }}
) as k
inner join {{ ref('int_customers__resolved') }} as r on r.member_key = k.member_key
where k.match_key is not null
group by k.match_key
having count(distinct r.unified_customer_id) > 1
