"""The sandbox's recorded traffic passes the shared conformance checker (Shopify's published schema decides).

GIVEN a shop recording a traffic log WHEN a well-behaved client uses every supported query and the mutation
(successes, userErrors, throttling, cost refusals, a wrong token) THEN `../shared/tools/conformance` finds 0
problems: every document validates, variables coerce, and every `data` has exactly the shape asked for.
"""

import json
from datetime import timedelta

from sandbox_testkit import (
    ITEMS,
    LOCATIONS,
    NOW,
    ORDER_IDS,
    ORDERS,
    SET_QUANTITIES,
    TOKEN,
    VARIANTS,
    page_all,
    set_input,
    small_world,
)

from sandbox.world import iso_z

ORDER_WITH_LINES = """
query OrderLines($id: ID!, $first: Int!, $after: String) {
  order(id: $id) {
    id
    lineItems(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      edges { cursor node { id sku quantity variant { id sku } } }
    }
  }
}
"""
NODE = """
query Node($id: ID!) {
  node(id: $id) {
    __typename
    id
    ... on Order { name totalPriceSet { shopMoney { amount } } }
    ... on ProductVariant { sku }
  }
}
"""
CUSTOMERS = """
query Customers($first: Int!, $after: String, $query: String) {
  customers(first: $first, after: $after, query: $query, sortKey: UPDATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes { id firstName lastName email phone updatedAt numberOfOrders amountSpent { amount currencyCode }
            defaultAddress { zip province city address1 } }
  }
}
"""
SHOP = "query { shop { id name currencyCode ianaTimezone myshopifyDomain taxesIncluded } }"
ITEM_LEVEL = """
query ItemLevel($id: ID!, $location: ID!) {
  inventoryItem(id: $id) {
    id sku
    inventoryLevel(locationId: $location) { id quantities(names: ["available", "on_hand", "committed"]) { name quantity } }
  }
}
"""

MONEY_BAG = "{ shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }"
ADDRESS = """{ id firstName lastName name company address1 address2 city province provinceCode zip country
  countryCodeV2 phone formatted(withName: true) formattedArea timeZone coordinatesValidated latitude longitude }"""
# Every field the sandbox models, so a value of the wrong type anywhere would show up in conformance.
EVERY_ORDER_FIELD = f"""
query EveryOrderField($first: Int!, $query: String) {{
  orders(first: $first, query: $query, sortKey: CREATED_AT, reverse: true) {{
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
    nodes {{
      id legacyResourceId name number createdAt updatedAt processedAt cancelledAt cancelReason closed closedAt
      confirmed test displayFinancialStatus displayFulfillmentStatus returnStatus currencyCode
      presentmentCurrencyCode taxesIncluded taxExempt estimatedTaxes email phone note tags sourceName
      customerLocale paymentGatewayNames discountCode discountCodes fullyPaid unpaid requiresShipping capturable
      refundable subtotalLineItemsQuantity currentSubtotalLineItemsQuantity
      totalPriceSet {MONEY_BAG} originalTotalPriceSet {MONEY_BAG} subtotalPriceSet {MONEY_BAG}
      totalShippingPriceSet {MONEY_BAG} totalDiscountsSet {MONEY_BAG} cartDiscountAmountSet {MONEY_BAG}
      totalTaxSet {MONEY_BAG} totalRefundedSet {MONEY_BAG} totalReceivedSet {MONEY_BAG} netPaymentSet {MONEY_BAG}
      totalOutstandingSet {MONEY_BAG} totalCapturableSet {MONEY_BAG} currentTotalPriceSet {MONEY_BAG}
      currentSubtotalPriceSet {MONEY_BAG} currentTotalTaxSet {MONEY_BAG} currentTotalDiscountsSet {MONEY_BAG}
      currentShippingPriceSet {MONEY_BAG}
      customer {{
        id legacyResourceId firstName lastName displayName email phone createdAt updatedAt locale note tags
        state taxExempt verifiedEmail validEmailAddress numberOfOrders amountSpent {{ amount currencyCode }}
        defaultEmailAddress {{ emailAddress }} defaultPhoneNumber {{ phoneNumber }}
        defaultAddress {ADDRESS} addresses(first: 2) {{ id city }}
      }}
      shippingAddress {ADDRESS} billingAddress {{ id zip }} billingAddressMatchesShippingAddress
      lineItems(first: 4) {{
        edges {{
          cursor
          node {{
            id name title variantTitle sku vendor quantity currentQuantity unfulfilledQuantity refundableQuantity
            nonFulfillableQuantity requiresShipping taxable isGiftCard merchantEditable
            originalUnitPriceSet {MONEY_BAG} discountedUnitPriceSet {MONEY_BAG}
            discountedUnitPriceAfterAllDiscountsSet {MONEY_BAG} originalTotalSet {MONEY_BAG}
            discountedTotalSet(withCodeDiscounts: true) {MONEY_BAG} totalDiscountSet {MONEY_BAG}
            unfulfilledOriginalTotalSet {MONEY_BAG} unfulfilledDiscountedTotalSet {MONEY_BAG}
            taxLines {{ title rate ratePercentage priceSet {MONEY_BAG} source channelLiable }}
            variant {{ id sku }} product {{ id title }}
          }}
        }}
      }}
    }}
  }}
}}
"""
EVERY_CATALOGUE_FIELD = """
query EveryCatalogueField($first: Int!, $location: ID!) {
  productVariants(first: $first, sortKey: SKU) {
    nodes {
      id legacyResourceId sku barcode title displayName price compareAtPrice taxable position createdAt
      updatedAt inventoryQuantity sellableOnlineQuantity availableForSale inventoryPolicy requiresComponents
      showUnitPrice selectedOptions { name value }
      product {
        id legacyResourceId title handle productType vendor status tags createdAt updatedAt publishedAt
        hasOnlyDefaultVariant tracksInventory totalInventory variants(first: 3) { nodes { id sku } }
      }
      inventoryItem {
        id legacyResourceId sku tracked requiresShipping createdAt updatedAt duplicateSkuCount
        countryCodeOfOrigin provinceCodeOfOrigin harmonizedSystemCode unitCost { amount currencyCode }
        inventoryLevel(locationId: $location) {
          id createdAt updatedAt isActive canDeactivate deactivationAlert
          item { id } location { id }
          quantities(names: ["available", "on_hand", "committed", "incoming", "reserved", "damaged",
                             "safety_stock", "quality_control"]) { id name quantity updatedAt }
        }
      }
    }
  }
  locations(first: 5, includeInactive: true) {
    nodes {
      id legacyResourceId name isActive isFulfillmentService fulfillsOnlineOrders shipsInventory
      hasActiveInventory hasUnfulfilledOrders activatable deactivatable deletable addressVerified deactivatedAt
      createdAt updatedAt
      address { address1 address2 city province provinceCode zip country countryCode phone latitude longitude formatted }
      inventoryLevels(first: 3) { nodes { id } }
    }
  }
  shop {
    id name email contactEmail myshopifyDomain url currencyCode enabledPresentmentCurrencies ianaTimezone
    timezoneAbbreviation timezoneOffset timezoneOffsetMinutes taxesIncluded taxShipping weightUnit
    orderNumberFormatPrefix orderNumberFormatSuffix shopOwnerName checkoutApiSupported setupRequired createdAt
    updatedAt
  }
}
"""


def test_the_traffic_of_a_client_session_passes_conformance(serve, tmp_path, conformance):
    log = tmp_path / "shopify-traffic.jsonl"
    # 60 days (~1,200 orders): every status queried below occurs whatever the seed draws (1.5 % of card orders are
    # partly refunded, so the default 5 days often have none)
    shop = serve(world=small_world(history_days=60), traffic_log=log, restore_rate=1000.0)
    world = shop.world
    since = iso_z(NOW - timedelta(days=2))

    # reads: every root the sandbox models, paged across boundaries
    page_all(shop, ORDERS, "orders", {"first": 20, "sortKey": "UPDATED_AT", "query": f"updated_at:>='{since}'"},
             max_pages=20)
    page_all(shop, ORDER_IDS, "orders", {"first": 50, "sortKey": "CREATED_AT", "reverse": True,
                                         "query": f"created_at:>={since}"})
    shop.data(ORDER_WITH_LINES, {"id": world.orders[-1].gid, "first": 2})
    shop.data(NODE, {"id": world.orders[0].gid})
    shop.data(NODE, {"id": world.variants[0].gid})
    page_all(shop, CUSTOMERS, "customers", {"first": 25, "query": "updated_at:>='2020-01-01T00:00:00Z'"})
    page_all(shop, VARIANTS, "productVariants", {"first": 10})
    items = page_all(shop, ITEMS, "inventoryItems", {"first": 10, "query": "updated_at:>='2020-01-01'"})
    shop.data(LOCATIONS)
    shop.data(SHOP)
    level = items[0]["inventoryLevels"]["nodes"][0]
    shop.data(ITEM_LEVEL, {"id": items[0]["id"], "location": level["location"]["id"]})

    # every modelled field, once (a wrongly typed value anywhere would fail conformance)
    for query in ("financial_status:pending", "fulfillment_status:unshipped", None):
        assert shop.data(EVERY_ORDER_FIELD, {"first": 3, "query": query})["orders"]["nodes"], query
    world.advance(NOW + timedelta(days=8))  # now cancellations, refunds and partial refunds exist too
    for query in ("status:cancelled", "financial_status:partially_refunded", "financial_status:refunded"):
        assert shop.data(EVERY_ORDER_FIELD, {"first": 3, "query": query})["orders"]["nodes"], query
    shop.data(EVERY_CATALOGUE_FIELD, {"first": 8, "location": world.locations[0].gid})

    # writes: applied, stale, negative, compare skipped, replayed
    q = {x["name"]: x["quantity"] for x in level["quantities"]}
    item, loc, avail = items[0]["id"], level["location"]["id"], q["available"]
    for key, rows in [("a", [(item, loc, avail + 3, avail)]), ("b", [(item, loc, 1, avail)]),
                      ("c", [(item, loc, -2, None)]), ("d", [(item, loc, avail, None)]),
                      ("d", [(item, loc, avail, None)])]:
        shop.gql(SET_QUANTITIES, {"input": set_input(rows), "key": key})

    # refusals a client must handle: a wrong token, a cost above the single-query limit, an empty bucket
    assert shop.post(SHOP, token="shpat_wrong").status_code == 401
    assert shop.gql("{ orders(first: 250) { nodes { id lineItems(first: 50) { nodes { id } } } } }")["errors"]
    shop.handle.api.bucket(TOKEN).drain()  # refills at 1,000 points/s: a page of 20 orders (802) must wait
    throttled = shop.gql(ORDERS, {"first": 20, "query": None})
    assert throttled["errors"][0]["extensions"]["code"] == "THROTTLED"

    lines = log.read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 20
    exchanges = [json.loads(line) for line in lines]
    assert all(e["channel"] == "shopify" and e["path"] == "/admin/api/2026-10/graphql.json" for e in exchanges)
    assert not any(TOKEN in line for line in lines), "the access token is never recorded"
    assert {e["status"] for e in exchanges} == {200, 401}

    report = conformance(log)
    assert f"shopify: {len(lines)} exchanges, 0 with problems" in report, report
