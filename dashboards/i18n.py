"""Every user-facing string of the dashboards, in one ja/en table.

`t(key, **values)` returns the string for the language chosen in the sidebar (`st.session_state["lang"]`),
Japanese by default; `{name}` placeholders are filled from `values`. A page never writes a user-facing
literal of its own: it adds a key here, with both languages (a test checks that every key has both).
"""

from __future__ import annotations

from typing import Final

import streamlit as st

LANGS: Final = ("ja", "en")
DEFAULT_LANG: Final = "ja"
LANG_KEY: Final = "lang"  # session-state key of the language switch
LANG_NAMES: Final = {"ja": "日本語", "en": "English"}

TEXTS: Final[dict[str, dict[str, str]]] = {
    # app shell
    "app.title": {"ja": "ichigen ダッシュボード", "en": "ichigen dashboards"},
    "lang.label": {"ja": "言語 / Language", "en": "言語 / Language"},
    "nav.sales": {"ja": "売上", "en": "Sales"},
    "nav.stock": {"ja": "在庫", "en": "Stock"},
    "nav.orders": {"ja": "受注", "en": "Orders"},
    "nav.customers": {"ja": "顧客", "en": "Customers"},
    "nav.sync": {"ja": "同期", "en": "Sync health"},
    "nav.sql": {"ja": "SQL", "en": "SQL"},
    "footer.version": {"ja": "公開バージョン: `{version}`", "en": "Published version: `{version}`"},
    "footer.published_at": {"ja": "公開日時: {when}", "en": "Published at: {when}"},
    "footer.published_at_mtime": {
        "ja": "ファイル更新日時: {when}",
        "en": "File modified at: {when}",
    },
    "footer.not_published": {"ja": "未公開（初回ビルド待ち）", "en": "Not published yet"},
    # serving copy
    "data.not_published.title": {
        "ja": "まだデータが公開されていません",
        "en": "No data has been published yet",
    },
    "data.not_published.body": {
        "ja": "初回のビルドがまだ公開されていません。プロジェクトのフォルダで `make once` を実行すると、"
        "データを取り込み、検証済みのコピーを公開します。公開後にこのページを再読み込みしてください。\n\n"
        "参照先: `{path}`",
        "en": "The first build has not been published yet. Run `make once` in the project folder to ingest "
        "the data and publish a tested copy, then reload this page.\n\nLooking for: `{path}`",
    },
    "data.config_error": {
        "ja": "設定ファイルを読み込めませんでした: {error}",
        "en": "Could not read the configuration: {error}",
    },
    "data.open_error": {
        "ja": "公開データを開けませんでした（`{path}`）: {error}",
        "en": "Could not open the published data (`{path}`): {error}",
    },
    "data.query_error": {
        "ja": "公開データの読み込みに失敗しました: {error}",
        "en": "Reading the published data failed: {error}",
    },
    # shared filters
    "filters.header": {"ja": "絞り込み", "en": "Filters"},
    "filters.period": {"ja": "期間", "en": "Period"},
    "filters.period.7d": {"ja": "過去7日間", "en": "Last 7 days"},
    "filters.period.30d": {"ja": "過去30日間", "en": "Last 30 days"},
    "filters.period.90d": {"ja": "過去90日間", "en": "Last 90 days"},
    "filters.period.custom": {"ja": "期間を指定", "en": "Custom range"},
    "filters.date_range": {"ja": "日付の範囲（日本時間）", "en": "Date range (JST)"},
    "filters.channels": {"ja": "チャネル", "en": "Channels"},
    "filters.channels.placeholder": {"ja": "チャネルを選択", "en": "Choose channels"},
    "filters.no_channels": {
        "ja": "チャネルを1つ以上選択してください。",
        "en": "Choose at least one channel.",
    },
    "filters.summary": {
        "ja": "{start} 〜 {end}（{days}日間、日本時間）　前期間: {prev_start} 〜 {prev_end}",
        "en": "{start} – {end} ({days} days, JST)  ·  previous period: {prev_start} – {prev_end}",
    },
    # channels
    "channel.shopify": {"ja": "自社サイト", "en": "Own site (Shopify)"},
    "channel.rakuten": {"ja": "楽天市場", "en": "Rakuten Ichiba"},
    "channel.amazon": {"ja": "Amazon", "en": "Amazon"},
    "channel.yahoo": {"ja": "Yahoo!ショッピング", "en": "Yahoo! Shopping"},
    "channel.pos": {"ja": "実店舗", "en": "Physical stores"},
    "channel.b2b": {"ja": "卸 (B2B)", "en": "Wholesale (B2B)"},
    "channel.erp": {"ja": "基幹システム (ERP)", "en": "ERP"},
    # sales page
    "sales.title": {"ja": "売上", "en": "Sales"},
    "sales.caption": {
        "ja": "チャネル別の売上（キャンセルを除く、税込）。データ最終日: {last_day}",
        "en": "Sales by channel (cancelled orders excluded, tax included). Data through: {last_day}",
    },
    "sales.no_data": {
        "ja": "公開データにまだ売上がありません。",
        "en": "The published data holds no sales yet.",
    },
    "sales.metric.gross": {"ja": "売上金額", "en": "Gross sales"},
    "sales.metric.orders": {"ja": "注文数", "en": "Orders"},
    "sales.metric.units": {"ja": "販売点数", "en": "Units sold"},
    "sales.metric.delta_desc": {"ja": "前期間比", "en": "vs previous period"},
    "sales.metric.help": {
        "ja": "前期間（{prev_start} 〜 {prev_end}）: {previous}",
        "en": "Previous period ({prev_start} – {prev_end}): {previous}",
    },
    "sales.chart.title": {"ja": "日別・チャネル別の売上", "en": "Sales by day and channel"},
    "sales.chart.empty": {
        "ja": "選択した期間・チャネルの売上はありません。",
        "en": "No sales in the selected period and channels.",
    },
    "sales.table.expander": {"ja": "明細を表示", "en": "Show the table"},
    "sales.download": {"ja": "CSVをダウンロード", "en": "Download CSV"},
    "sales.col.date": {"ja": "日付", "en": "Date"},
    "sales.col.weekday": {"ja": "曜日", "en": "Weekday"},
    "sales.col.channel_code": {"ja": "チャネルコード", "en": "Channel code"},
    "sales.col.channel": {"ja": "チャネル", "en": "Channel"},
    "sales.col.orders": {"ja": "注文数", "en": "Orders"},
    "sales.col.units": {"ja": "販売点数", "en": "Units"},
    "sales.col.gross": {"ja": "売上金額（円）", "en": "Gross sales (JPY)"},
    # shared by the pages
    "common.col.channel": {"ja": "チャネル", "en": "Channel"},
    "common.col.channel_code": {"ja": "チャネルコード", "en": "Channel code"},
    "common.col.sku": {"ja": "SKU", "en": "SKU"},
    "common.download": {"ja": "CSVをダウンロード", "en": "Download CSV"},
    "common.period_not_used": {
        "ja": "このページの在庫は現在の値です（期間の絞り込みは使いません）。",
        "en": "Stock on this page is the current position (the period filter does not apply).",
    },
    # stock page
    "stock.title": {"ja": "在庫", "en": "Stock"},
    "stock.caption": {
        "ja": "基幹システムの在庫（販売可能な倉庫のみ合算）と、直近{days}日間の販売ペースからの在庫日数。"
        "販売ペースは全チャネル合計（キャンセルを除く）。",
        "en": "Stock on hand in the ERP (sellable warehouses summed) and days of cover from the sales pace of "
        "the last {days} days, all channels together (cancelled orders excluded).",
    },
    "stock.no_data": {
        "ja": "公開データにまだ在庫がありません。",
        "en": "The published data holds no stock yet.",
    },
    "stock.metric.skus": {"ja": "SKU数", "en": "SKUs"},
    "stock.metric.sellable": {"ja": "販売可能在庫", "en": "Sellable on hand"},
    "stock.metric.stockouts": {"ja": "欠品SKU", "en": "Stock-outs"},
    "stock.metric.low_cover": {"ja": "在庫日数{days}日未満", "en": "Cover under {days} days"},
    "stock.metric.stockouts.help": {
        "ja": "販売可能な倉庫の在庫が0のSKU",
        "en": "SKUs with no units in any sellable warehouse",
    },
    "stock.metric.low_cover.help": {
        "ja": "在庫はあるが、直近の販売ペースで{days}日以内になくなるSKU",
        "en": "SKUs in stock that the recent sales pace empties within {days} days",
    },
    "stock.sku.title": {"ja": "SKU別の在庫と在庫日数", "en": "Stock and days of cover by SKU"},
    "stock.sku.caption": {
        "ja": "在庫日数 = 販売可能在庫 ÷ 1日平均販売数（直近{days}日）。販売がないSKUは「∞」。",
        "en": "Days of cover = sellable on hand ÷ average daily units sold (last {days} days). "
        '"∞" when the SKU did not sell.',
    },
    "stock.stockouts.title": {"ja": "欠品", "en": "Stock-outs"},
    "stock.stockouts.none": {"ja": "欠品のSKUはありません。", "en": "No SKU is out of stock."},
    "stock.position.title": {"ja": "倉庫別の在庫", "en": "Stock by warehouse"},
    "stock.position.caption": {
        "ja": "販売可能な倉庫: {sellable}　／　販売に使わない倉庫: {other}",
        "en": "Sellable warehouses: {sellable}  ·  not sold from: {other}",
    },
    "stock.targets.title": {"ja": "チャネル別の在庫連携数", "en": "Stock sent to each channel"},
    "stock.targets.caption": {
        "ja": "連携数 = 販売可能在庫 − 未出荷の受注 − 安全在庫 − チャネル別の確保数（0未満は0）。"
        "「計算式」列が各数値の内訳です。",
        "en": "Target = sellable on hand − open order units − safety stock − channel buffer (never below 0). "
        'The "Explanation" column shows the arithmetic of each figure.',
    },
    "stock.targets.empty": {
        "ja": "選択したチャネルの連携対象SKUはありません。",
        "en": "The chosen channels list no SKU.",
    },
    "stock.why.label": {
        "ja": "なぜこの数？（チャネル・SKUを選択）",
        "en": "Why this number? (pick channel and SKU)",
    },
    "stock.why.answer": {
        "ja": "{channel} の {sku} は **{target}** 点: `{explain}`",
        "en": "{channel} shows **{target}** for {sku}: `{explain}`",
    },
    "stock.bundles.title": {"ja": "セット商品", "en": "Bundles"},
    "stock.bundles.caption": {
        "ja": "セット商品 {bundles} 件（うち今の在庫で組めないもの {unbuildable} 件）。組める数 = 構成品ごとの"
              "「販売可能在庫 ÷ 1セットの数」の最小値。◀ が数を決めている構成品です。",
        "en": "{bundles} bundles ({unbuildable} cannot be made from stock now). Sets = the smallest "
              "“sellable on hand ÷ units per set” over the components; ◀ marks the component that limits it.",
    },
    "stock.bundles.none": {"ja": "セット商品はありません。", "en": "There are no bundles."},
    "stock.col.bundle": {"ja": "セット商品", "en": "Bundle"},
    "stock.col.buildable_sets": {"ja": "組める数", "en": "Sets possible"},
    "stock.col.component": {"ja": "構成品", "en": "Component"},
    "stock.col.per_set": {"ja": "1セットの数", "en": "Per set"},
    "stock.col.sets_from_component": {"ja": "この構成品で組める数", "en": "Sets from this component"},
    "stock.col.limiting": {"ja": "制約", "en": "Limits"},
    "stock.col.warehouse": {"ja": "倉庫", "en": "Warehouse"},
    "stock.col.sellable_on_hand": {"ja": "販売可能在庫", "en": "Sellable on hand"},
    "stock.col.other_on_hand": {"ja": "販売外の倉庫の在庫", "en": "On hand elsewhere"},
    "stock.col.units_sold": {"ja": "販売数（{days}日）", "en": "Units sold ({days} days)"},
    "stock.col.avg_daily": {"ja": "1日平均販売数", "en": "Avg. units / day"},
    "stock.col.days_of_cover": {"ja": "在庫日数", "en": "Days of cover"},
    "stock.col.total": {"ja": "合計", "en": "Total"},
    "stock.col.open_order_units": {"ja": "未出荷の受注", "en": "Open order units"},
    "stock.col.safety_stock": {"ja": "安全在庫", "en": "Safety stock"},
    "stock.col.available_to_sell": {"ja": "販売可能数", "en": "Available to sell"},
    "stock.col.channel_buffer": {"ja": "チャネル確保数", "en": "Channel buffer"},
    "stock.col.target_quantity": {"ja": "連携数", "en": "Target"},
    "stock.col.explain": {"ja": "計算式", "en": "Explanation"},
    # orders page
    "orders.title": {"ja": "受注", "en": "Orders"},
    "orders.caption": {
        "ja": "未処理の受注（入金待ち・発送待ち）は現在の件数で、期間の絞り込みは使いません。"
        "キャンセル・返品は選択期間の受注日（日本時間）で集計します。基準時刻: {now}",
        "en": "The backlog (awaiting payment, awaiting shipment) is the current count; the period filter does not "
        "apply to it. Cancellations and returns count orders placed in the chosen period (JST). As of {now}",
    },
    "orders.no_data": {
        "ja": "公開データにまだ受注がありません。",
        "en": "The published data holds no orders yet.",
    },
    "orders.metric.pending_payment": {"ja": "入金待ち", "en": "Awaiting payment"},
    "orders.metric.awaiting_shipment": {"ja": "発送待ち", "en": "Awaiting shipment"},
    "orders.metric.late": {"ja": "出荷遅延", "en": "Late shipments"},
    "orders.metric.late.help": {
        "ja": "受注から{days}日を超えて発送待ちの受注",
        "en": "Orders awaiting shipment for more than {days} days",
    },
    "orders.metric.cancelled": {"ja": "キャンセル（期間内）", "en": "Cancelled (period)"},
    "orders.metric.returned": {"ja": "返品（期間内）", "en": "Returned (period)"},
    "orders.backlog.title": {"ja": "未処理の受注（経過日数別）", "en": "Backlog by age"},
    "orders.backlog.empty": {"ja": "未処理の受注はありません。", "en": "No open orders."},
    "orders.late.title": {"ja": "出荷遅延（受注から{days}日超）", "en": "Late shipments (over {days} days)"},
    "orders.late.none": {"ja": "出荷遅延はありません。", "en": "No late shipments."},
    "orders.cancel.title": {
        "ja": "チャネル別のキャンセル・返品",
        "en": "Cancellations and returns by channel",
    },
    "orders.cancel.empty": {
        "ja": "選択した期間・チャネルの受注はありません。",
        "en": "No orders in the selected period and channels.",
    },
    "orders.status.pending_payment": {"ja": "入金待ち", "en": "Awaiting payment"},
    "orders.status.awaiting_shipment": {"ja": "発送待ち", "en": "Awaiting shipment"},
    "orders.bucket.lt1": {"ja": "1日未満", "en": "< 1 day"},
    "orders.bucket.d1_3": {"ja": "1〜3日", "en": "1–3 days"},
    "orders.bucket.d3_7": {"ja": "3〜7日", "en": "3–7 days"},
    "orders.bucket.gt7": {"ja": "7日超", "en": "> 7 days"},
    "orders.col.status": {"ja": "ステータス", "en": "Status"},
    "orders.col.total": {"ja": "合計", "en": "Total"},
    "orders.col.order": {"ja": "注文番号", "en": "Order"},
    "orders.col.ordered_at": {"ja": "受注日時（日本時間）", "en": "Ordered at (JST)"},
    "orders.col.age_days": {"ja": "経過日数", "en": "Age (days)"},
    "orders.col.amount": {"ja": "金額（円）", "en": "Amount (JPY)"},
    "orders.col.orders": {"ja": "受注数", "en": "Orders"},
    "orders.col.cancelled": {"ja": "キャンセル", "en": "Cancelled"},
    "orders.col.returned": {"ja": "返品", "en": "Returned"},
    "orders.col.cancel_rate": {"ja": "キャンセル率（%）", "en": "Cancel rate (%)"},
    "orders.col.return_rate": {"ja": "返品率（%）", "en": "Return rate (%)"},
    # sync health page
    "customers.title": {"ja": "顧客", "en": "Customers"},
    "customers.caption": {
        "ja": "チャネル・店舗・B2B をまたいで名寄せした顧客。RFM は直近 {days} 日間（{as_of} 時点）。",
        "en": "Customers unified across channels, stores and B2B accounts. RFM over the last {days} days "
        "(as of {as_of}).",
    },
    "customers.no_model": {
        "ja": "公開中のデータに顧客モデルがまだありません。次のビルドの公開後に表示されます。",
        "en": "The published data has no customer model yet; it appears after the next publish.",
    },
    "customers.no_data": {"ja": "顧客データがまだありません。", "en": "No customer data yet."},
    "customers.metric.customers": {"ja": "顧客数（名寄せ後）", "en": "Unified customers"},
    "customers.metric.customers.help": {
        "ja": "同じ人を1人として数えた顧客数。", "en": "People counted once, whichever sources they appear in.",
    },
    "customers.metric.cross_source": {"ja": "複数ソースで購入", "en": "Seen in 2+ sources"},
    "customers.metric.cross_source.help": {
        "ja": "2つ以上のチャネル・店舗・B2B に現れる顧客（名寄せで1人にまとまった人）。",
        "en": "Customers found in two or more channels, stores or B2B accounts and merged into one.",
    },
    "customers.metric.repeat": {"ja": "リピーター", "en": "Repeat customers"},
    "customers.metric.repeat.help": {
        "ja": "キャンセルを除く累計注文が2件以上。", "en": "Two or more lifetime orders, cancellations excluded.",
    },
    "customers.metric.b2b": {"ja": "B2B 取引先", "en": "B2B accounts"},
    "customers.metric.b2b.help": {"ja": "ERP の取引先を含む顧客。", "en": "Customers that include an ERP account."},
    "customers.rank.title": {"ja": "ランク分布", "en": "Rank distribution"},
    "customers.rfm.title": {"ja": "RFM 分布", "en": "RFM scatter"},
    "customers.top.title": {"ja": "上位顧客（購入金額 上位 {n} 名）", "en": "Top customers (top {n} by spend)"},
    "customers.b2b.title": {"ja": "B2B 取引先（ERP ランク付き）", "en": "B2B accounts with their ERP rank"},
    "customers.b2b.none": {"ja": "B2B 取引先はありません。", "en": "No B2B accounts."},
    "customers.movement.not_yet": {
        "ja": "ランクの推移（30日前との比較）は、データモデルがまだ公開していないため表示できません。",
        "en": "Rank movement (against 30 days ago) cannot be shown yet: the data model does not publish it.",
    },
    "customers.movement.up": {"ja": "ランクアップ", "en": "Moved up"},
    "customers.movement.same": {"ja": "変わらず", "en": "Unchanged"},
    "customers.movement.down": {"ja": "ランクダウン", "en": "Moved down"},
    "customers.movement.new": {"ja": "新規", "en": "New"},
    "customers.col.name": {"ja": "氏名・社名", "en": "Name"},
    "customers.col.kana": {"ja": "フリガナ", "en": "Reading"},
    "customers.col.tier": {"ja": "ランク", "en": "Rank"},
    "customers.col.customers": {"ja": "顧客数", "en": "Customers"},
    "customers.col.monetary": {"ja": "購入金額（期間内）", "en": "Spend (window)"},
    "customers.col.frequency": {"ja": "購入回数（期間内）", "en": "Orders (window)"},
    "customers.col.recency": {"ja": "最終購入からの日数", "en": "Days since last order"},
    "customers.col.sources": {"ja": "購入チャネル", "en": "Sources"},
    "customers.col.lifetime_orders": {"ja": "累計注文", "en": "Lifetime orders"},
    "customers.col.last_order": {"ja": "最終購入（日本時間）", "en": "Last order (JST)"},
    "customers.col.erp_rank": {"ja": "ERP ランク", "en": "ERP rank"},
    "customers.col.id": {"ja": "顧客ID", "en": "Customer id"},
    "sync.title": {"ja": "同期", "en": "Sync health"},
    "sync.caption": {
        "ja": "データの取り込みと、各チャネルへの在庫連携の状況。基準時刻: {now}",
        "en": "Data ingestion and stock pushes to each channel. As of {now}",
    },
    "sync.ingest.title": {
        "ja": "最終取り込み（ソース・エンティティ別）",
        "en": "Last ingest per source and entity",
    },
    "sync.ingest.caption": {
        "ja": "公開データに含まれる各ステージングモデルの最新の取得時刻（_fetched_at の最大値）。",
        "en": "The newest fetch time (max _fetched_at) of each staging model in the published data.",
    },
    "sync.ingest.empty": {
        "ja": "取り込み時刻を持つモデルがまだありません。",
        "en": "No model with a fetch time has been published yet.",
    },
    "sync.metric.sources": {"ja": "取り込み対象", "en": "Sources / entities"},
    "sync.metric.oldest": {"ja": "最古の取り込み（分前）", "en": "Oldest ingest (min ago)"},
    "sync.metric.applied": {"ja": "連携成功", "en": "Applied"},
    "sync.metric.failed": {"ja": "連携失敗", "en": "Failed"},
    "sync.metric.refused": {"ja": "ガードレールで停止", "en": "Refused by guard rails"},
    "sync.push.title": {"ja": "チャネル別の連携結果（期間内）", "en": "Push results per channel (period)"},
    "sync.push.empty": {
        "ja": "選択した期間・チャネルの連携記録はありません。",
        "en": "No pushes in the selected period and channels.",
    },
    "sync.push.none": {
        "ja": "連携記録（push log）はまだありません。",
        "en": "The push log holds no attempts yet.",
    },
    "sync.refusals.title": {"ja": "ガードレールによる停止", "en": "Guard-rail refusals"},
    "sync.refusals.none": {
        "ja": "選択した期間・チャネルでガードレールによる停止はありません。",
        "en": "No guard-rail refusals in the selected period and channels.",
    },
    "sync.lag.title": {"ja": "在庫反映の遅れ（推移）", "en": "Stock lag over time"},
    "sync.lag.caption": {
        "ja": "他チャネルで売れてから、このチャネルへ次にその SKU の在庫を送るまでの秒数（販売日・チャネル別の"
              "95パーセンタイル）。目標が動かなかった販売も次の送信で数えるため上限値です。",
        "en": "Seconds from a sale on another channel to the next stock push of that SKU to this channel (95th "
              "percentile per day of sale and channel). An upper bound: a sale that moved no target counts "
              "until the SKU's next push anyway.",
    },
    "sync.lag.none": {"ja": "まだ在庫の送信がありません。", "en": "No stock has been pushed yet."},
    "sync.lag.table": {"ja": "日別の数値", "en": "Figures per day"},
    "sync.lag.col.date": {"ja": "販売日", "en": "Day of sale"},
    "sync.lag.col.sales": {"ja": "他チャネルの販売", "en": "Sales elsewhere"},
    "sync.lag.col.reflected": {"ja": "反映済み", "en": "Pushed"},
    "sync.lag.col.not_yet_pushed": {"ja": "未送信", "en": "Not pushed yet"},
    "sync.lag.col.p50": {"ja": "中央値（秒）", "en": "p50 (s)"},
    "sync.lag.col.p95": {"ja": "95%（秒）", "en": "p95 (s)"},
    "sync.lag.col.max": {"ja": "最大（秒）", "en": "Max (s)"},
    "sync.metric.quarantined": {"ja": "隔離中のレコード", "en": "Quarantined records"},
    "sync.quarantine.title": {"ja": "取り込めなかったレコード（隔離）", "en": "Records not landed (quarantine)"},
    "sync.quarantine.caption": {
        "ja": "ソース・エンティティ・理由ごとの件数。取り込めなかったレコードは原文のまま保管されています"
        "（staging.stg_quarantine__records）。",
        "en": "Counts per source, entity and reason. Every record that could not be landed is kept with its raw "
        "text (staging.stg_quarantine__records).",
    },
    "sync.quarantine.none": {
        "ja": "隔離されたレコードはありません。",
        "en": "No record has been quarantined.",
    },
    "sync.drift.title": {"ja": "チャネル別の在庫差異（目標 vs 表示）", "en": "Stock drift per channel (target vs shown)"},
    "sync.drift.caption": {
        "ja": "出品中のSKUについて、在庫目標とチャネルが最後に表示していた在庫数の比較。",
        "en": "For listed SKUs: the stock target against what the channel last showed.",
    },
    "sync.drift.none": {"ja": "差異のデータはまだありません。", "en": "No drift data yet."},
    "sync.intake.title": {"ja": "基幹システムへの受注連携", "en": "Orders posted to the ERP"},
    "sync.intake.caption": {
        "ja": "期間内に ERP の受注取込へ連携した注文数と、現在保留中の注文数（チャネル別）。",
        "en": "Orders posted to the ERP's order intake in the period, and orders held now, per channel.",
    },
    "sync.intake.none": {"ja": "受注連携の記録はまだありません。", "en": "No ERP intake has run yet."},
    "sync.intake.held": {
        "ja": "{n} 件の注文が保留中です（SKU の対応付けを確認してください）。",
        "en": "{n} orders are held (check their SKU mapping).",
    },
    "sync.col.posted": {"ja": "連携済み", "en": "Posted"},
    "sync.col.held": {"ja": "保留中", "en": "Held"},
    "sync.col.order": {"ja": "注文", "en": "Order"},
    "sync.col.held_reason": {"ja": "保留の理由", "en": "Why held"},
    "sync.col.held_since": {"ja": "保留開始（日本時間）", "en": "Held since (JST)"},
    "sync.col.reason": {"ja": "理由の種類", "en": "Kind of reason"},
    "sync.col.records": {"ja": "件数", "en": "Records"},
    "sync.col.occurrences": {"ja": "再検出を含む回数", "en": "Occurrences"},
    "sync.col.last_quarantined": {"ja": "最終検出（日本時間）", "en": "Last seen (JST)"},
    "sync.col.example": {"ja": "例", "en": "Example"},
    "sync.col.in_sync": {"ja": "一致", "en": "In sync"},
    "sync.col.drift": {"ja": "差異あり", "en": "Drift"},
    "sync.col.not_seen": {"ja": "未取得", "en": "Not seen"},
    "sync.col.units_off": {"ja": "差異の合計（個）", "en": "Units off (total)"},
    "sync.col.source": {"ja": "ソース", "en": "Source"},
    "sync.col.entity": {"ja": "エンティティ", "en": "Entity"},
    "sync.col.model": {"ja": "モデル", "en": "Model"},
    "sync.col.last_fetched": {"ja": "最終取得（日本時間）", "en": "Last fetched (JST)"},
    "sync.col.age_minutes": {"ja": "経過（分）", "en": "Age (minutes)"},
    "sync.col.applied": {"ja": "成功", "en": "Applied"},
    "sync.col.failed": {"ja": "失敗", "en": "Failed"},
    "sync.col.refused": {"ja": "停止", "en": "Refused"},
    "sync.col.stale": {"ja": "競合（再試行待ち）", "en": "Stale"},
    "sync.col.dry_run": {"ja": "試行（dry run）", "en": "Dry run"},
    "sync.col.last_push": {"ja": "最終連携（日本時間）", "en": "Last push (JST)"},
    "sync.col.pushed_at": {"ja": "日時（日本時間）", "en": "When (JST)"},
    "sync.col.field": {"ja": "項目", "en": "Field"},
    "sync.col.old_value": {"ja": "変更前", "en": "Old"},
    "sync.col.new_value": {"ja": "変更後", "en": "New"},
    "sync.col.error": {"ja": "理由", "en": "Reason"},
    # SQL page
    "sql.title": {"ja": "SQL", "en": "SQL"},
    "sql.caption": {
        "ja": "公開データ（読み取り専用）に SQL を実行します。書き込みはできません。"
        "{timeout}秒を超えるクエリは中断し、表示は先頭{rows}行までです。",
        "en": "Run SQL on the published data (read-only): writes are impossible. Queries running longer than "
        "{timeout} s are cut off; at most the first {rows} rows are shown.",
    },
    "sql.tab.query": {"ja": "クエリ", "en": "Query"},
    "sql.tab.dictionary": {"ja": "データ辞書", "en": "Data dictionary"},
    "sql.example.label": {"ja": "クエリ例", "en": "Example queries"},
    "sql.example.none": {"ja": "（選択してください）", "en": "(choose one)"},
    "sql.example.daily_sales": {
        "ja": "チャネル別の売上（直近30日）",
        "en": "Sales by channel (last 30 days)",
    },
    "sql.example.backlog": {"ja": "ステータス別の受注数", "en": "Orders by status"},
    "sql.example.stockouts": {"ja": "欠品のSKU", "en": "SKUs out of stock"},
    "sql.example.targets": {
        "ja": "チャネル別の在庫連携数と計算式",
        "en": "Channel stock targets with explanation",
    },
    "sql.example.top_skus": {"ja": "販売数の多いSKU（上位10）", "en": "Top 10 SKUs by units sold"},
    "sql.editor.label": {"ja": "SQL（DuckDB）", "en": "SQL (DuckDB)"},
    "sql.run": {"ja": "実行", "en": "Run"},
    "sql.result.caption": {
        "ja": "{rows}行（{seconds:.2f}秒）",
        "en": "{rows} rows ({seconds:.2f} s)",
    },
    "sql.result.truncated": {
        "ja": "結果が{rows}行を超えたため、先頭{rows}行のみ表示しています。",
        "en": "The result has more than {rows} rows; only the first {rows} are shown.",
    },
    "sql.result.empty": {"ja": "結果は0行です。", "en": "The query returned no rows."},
    "sql.view.label": {"ja": "表示", "en": "Show as"},
    "sql.view.table": {"ja": "表", "en": "Table"},
    "sql.view.bar": {"ja": "棒グラフ", "en": "Bar chart"},
    "sql.view.line": {"ja": "折れ線グラフ", "en": "Line chart"},
    "sql.chart.x": {"ja": "横軸", "en": "X axis"},
    "sql.chart.y": {"ja": "縦軸（数値）", "en": "Y axis (numbers)"},
    "sql.chart.no_numbers": {
        "ja": "グラフにできる数値の列がありません。",
        "en": "The result has no numeric column to chart.",
    },
    "sql.error.empty": {"ja": "SQLを入力してください。", "en": "Enter a query."},
    "sql.error.timeout": {
        "ja": "クエリが{timeout}秒を超えたため中断しました。条件を絞るか、集計してから実行してください。",
        "en": "The query ran longer than {timeout} s and was cut off. Narrow it down or aggregate first.",
    },
    "sql.error.read_only": {
        "ja": "公開データは読み取り専用です。書き込み・変更（{kind}）は実行できません。",
        "en": "The published data is read-only: writes and changes ({kind}) cannot run.",
    },
    "sql.error.failed": {"ja": "クエリの実行に失敗しました: {error}", "en": "The query failed: {error}"},
    "sql.dict.caption_manifest": {
        "ja": "dbt のドキュメント（{path}）から: モデルと列の説明。",
        "en": "From dbt's docs ({path}): every model and column with its description.",
    },
    "sql.dict.caption_schema": {
        "ja": "dbt のドキュメント（manifest.json）が見つからないため、公開データの列一覧のみ表示しています。",
        "en": "dbt's docs (manifest.json) were not found: showing the columns of the published data only.",
    },
    "sql.dict.layer.marts": {"ja": "マート（分析用）", "en": "Marts (for analysis)"},
    "sql.dict.layer.intermediate": {"ja": "中間モデル", "en": "Intermediate"},
    "sql.dict.layer.staging": {"ja": "ステージング", "en": "Staging"},
    "sql.dict.layer.other": {"ja": "その他", "en": "Other"},
    "sql.dict.col.column": {"ja": "列", "en": "Column"},
    "sql.dict.col.type": {"ja": "型", "en": "Type"},
    "sql.dict.col.description": {"ja": "説明", "en": "Description"},
}

WEEKDAYS: Final = {
    "ja": ("月", "火", "水", "木", "金", "土", "日"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


def lang() -> str:
    """The language chosen in the sidebar; Japanese when none has been chosen."""
    try:
        value = st.session_state.get(LANG_KEY, DEFAULT_LANG)
    except Exception:  # outside a Streamlit run (plain unit tests)
        value = DEFAULT_LANG
    return value if value in LANGS else DEFAULT_LANG


def t(key: str, /, *, lang_: str | None = None, **values: object) -> str:
    """The string for `key` in the current language (or `lang_`), with `{placeholders}` filled in."""
    entry = TEXTS.get(key)
    if entry is None:
        return key  # visible in the UI and caught by the tests, never a crash
    text = entry.get(lang_ or lang()) or entry[DEFAULT_LANG]
    return text.format(**values) if values else text


def weekday(day_index: int, lang_: str | None = None) -> str:
    """Short weekday name; `day_index` as `date.weekday()` (Monday = 0)."""
    return WEEKDAYS[lang_ or lang()][day_index]


# Widgets whose option labels are translated (see `keep_on_language_change`).
_LOCALISED_WIDGET_KEYS: set[str] = set()


def keep_on_language_change(*keys: str) -> None:
    """Declare widget keys whose *option labels* are translated, so a language switch keeps their value.

    Streamlit sends a radio's or multiselect's value back as the displayed label. After a language switch
    the old label matches no option and Streamlit could reset the widget to its default (losing, say, the
    channels a manager picked). The language switch's callback re-assigns these keys from their current
    values, which Streamlit then shows under the new labels.
    """
    _LOCALISED_WIDGET_KEYS.update(keys)


def _carry_widget_values_over() -> None:
    state = st.session_state
    for key in _LOCALISED_WIDGET_KEYS:
        if key in state:
            state[key] = state[key]


def language_switch() -> str:
    """The sidebar language switch (the app shell calls it before building the navigation)."""
    st.sidebar.radio(
        t("lang.label"),
        options=list(LANGS),
        format_func=LANG_NAMES.__getitem__,
        horizontal=True,
        key=LANG_KEY,
        on_change=_carry_widget_values_over,
        # Kept in the URL as the label (`?lang=English`), so a bookmark or a reload keeps the language;
        # Japanese, the default, leaves the URL clean.
        bind="query-params",
    )
    return lang()


def labels(keys: dict[str, str]) -> dict[str, str]:
    """{value: translated label}, resolved now, for a widget's `format_func=labels(...).__getitem__`.

    A format_func must not look the language up lazily: Streamlit may call it outside the script run.
    """
    return {value: t(key) for value, key in keys.items()}
