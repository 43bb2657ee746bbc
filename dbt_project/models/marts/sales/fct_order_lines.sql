-- One row per channel order line (all channels). Columns as in DECISIONS.md D6.
-- sku is the ERP SKU the line resolved to; a line that matched no ERP product keeps the channel's seller SKU
-- so it stays visible (int_order_lines__unified has both).
select
    order_line_key,
    order_key,
    channel,
    coalesce(erp_sku, channel_sku)  as sku,
    quantity,
    unit_price_jpy,
    line_total_jpy
from {{ ref('int_order_lines__unified') }}
