-- One row per sales channel, from the seed `channels` (edit the seed to add a channel).
select
    channel,
    name_ja,
    name_en,
    kind,
    pushes_stock,
    price_step
from {{ ref('channels') }}
