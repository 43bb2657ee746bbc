-- Identity resolution settled: every matching key (e-mail, phone, kana+zip) belongs to exactly one unified
-- customer. Rows = keys still split across customers, i.e. a component longer than var
-- customer_identity_max_hops (raise it). One join of the records to their customers, then per key kind the
-- keys whose smallest and largest customer id differ (cheaper than counting distinct ids per key).
with records as (

    select i.email_key, i.phone_key, i.kana_zip_key, r.unified_customer_id
    from {{ ref('int_customers__identities') }} as i
    inner join {{ ref('int_customers__resolved') }} as r on r.member_key = i.member_key

)

select 'email:' || email_key as match_key, min(unified_customer_id) as first_id, max(unified_customer_id) as last_id
from records where email_key is not null
group by email_key having min(unified_customer_id) <> max(unified_customer_id)
union all
select 'phone:' || phone_key, min(unified_customer_id), max(unified_customer_id)
from records where phone_key is not null
group by phone_key having min(unified_customer_id) <> max(unified_customer_id)
union all
select 'kana_zip:' || kana_zip_key, min(unified_customer_id), max(unified_customer_id)
from records where kana_zip_key is not null
group by kana_zip_key having min(unified_customer_id) <> max(unified_customer_id)
