//! Reading the public API: URLs, pages, and the answers that mean "nothing recorded".

use std::collections::HashSet;
use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::CheckError;
use crate::model::{
    AccountSnapshot, LedgerEntry, Order, Payment, Progress, StatsFact, Totals, Wallet,
};

/// The largest page the API serves; the fewer round trips the better.
const PAGE_LIMIT: &str = "1000";

/// The most pages one listing may take: a million items at [`PAGE_LIMIT`] a page, some fifty
/// times what a `converge bench` at its ceiling places in a run, and still a few hundred MB
/// of orders held at most. A listing longer than that is a cursor that never ends.
const PAGES_MAX: usize = 1_000;

/// The longest one read may take. The services answer `503` after their own call timeout
/// (2 s by default), so a read still unanswered after this long is a stuck system, and the
/// checker says so rather than wait forever on a client without a timeout of its own.
pub(crate) const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of an unexpected error body is kept in a [`CheckError`].
const BODY_SHOWN_CHARS: usize = 300;

pub(crate) struct Api<'a> {
    http: &'a reqwest::Client,
    /// http(s), can be a base, no query or fragment.
    base: Url,
}

/// A page of a listing: its items and the cursor of the next page (absent on the last).
trait Page: DeserializeOwned {
    type Item;
    fn into_parts(self) -> (Vec<Self::Item>, Option<String>);
}

#[derive(Deserialize)]
struct AccountRow {
    id: String,
}

#[derive(Deserialize)]
struct AccountPage {
    accounts: Vec<AccountRow>,
    #[serde(default)]
    next_after: Option<String>,
}

impl Page for AccountPage {
    type Item = AccountRow;
    fn into_parts(self) -> (Vec<AccountRow>, Option<String>) {
        (self.accounts, self.next_after)
    }
}

#[derive(Deserialize)]
struct OrderPage {
    orders: Vec<Order>,
    #[serde(default)]
    next_after: Option<String>,
}

impl Page for OrderPage {
    type Item = Order;
    fn into_parts(self) -> (Vec<Order>, Option<String>) {
        (self.orders, self.next_after)
    }
}

#[derive(Deserialize)]
struct PaymentPage {
    payments: Vec<Payment>,
    #[serde(default)]
    next_after: Option<String>,
}

impl Page for PaymentPage {
    type Item = Payment;
    fn into_parts(self) -> (Vec<Payment>, Option<String>) {
        (self.payments, self.next_after)
    }
}

#[derive(Deserialize)]
struct LedgerPage {
    entries: Vec<LedgerEntry>,
    #[serde(default)]
    next_after: Option<String>,
}

impl Page for LedgerPage {
    type Item = LedgerEntry;
    fn into_parts(self) -> (Vec<LedgerEntry>, Option<String>) {
        (self.entries, self.next_after)
    }
}

#[derive(Deserialize)]
struct PointsBody {
    points: i64,
}

/// Whether a 404 is an error or means "nothing recorded yet".
#[derive(Clone, Copy, PartialEq, Eq)]
enum Missing {
    IsError,
    IsEmpty,
}

impl<'a> Api<'a> {
    pub(crate) fn new(http: &'a reqwest::Client, base_url: &str) -> Result<Self, CheckError> {
        let invalid = |reason: String| CheckError::BaseUrl {
            url: base_url.to_owned(),
            reason,
        };
        let mut base = Url::parse(base_url.trim()).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "the scheme must be http or https, not {}",
                base.scheme()
            )));
        }
        if base.cannot_be_a_base() {
            return Err(invalid("it cannot have paths appended".to_owned()));
        }
        base.set_query(None);
        base.set_fragment(None);
        Ok(Self { http, base })
    }

    /// The base URL with `segments` appended, each percent-encoded, and `query`.
    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        endpoint(&self.base, segments, query)
    }

    /// The ids of every account, in the order listed.
    pub(crate) async fn account_ids(&self) -> Result<Vec<String>, CheckError> {
        let rows: Vec<AccountRow> = self
            .list::<AccountPage>(&["accounts"], Missing::IsError)
            .await?;
        Ok(rows.into_iter().map(|row| row.id).collect())
    }

    /// Everything the services say about one account. A 404 on a per-account read means the
    /// service has recorded nothing for it (a wallet never topped up, an account without
    /// orders), which reads as zero. The order listing is read after the other services (see
    /// [`AccountSnapshot`] for why), then Stats' fact of each listed order.
    pub(crate) async fn account_snapshot(
        &self,
        account_id: &str,
    ) -> Result<AccountSnapshot, CheckError> {
        let stats = self
            .get::<Totals>(&["stats", "accounts", account_id], Missing::IsEmpty)
            .await?
            .unwrap_or_default();
        let points = self
            .get::<PointsBody>(&["loyalty", account_id], Missing::IsEmpty)
            .await?
            .map_or(0, |body| body.points);
        let ledger = self
            .list::<LedgerPage>(&["loyalty", account_id, "ledger"], Missing::IsEmpty)
            .await?;
        let wallet = self
            .get::<Wallet>(&["wallets", account_id], Missing::IsEmpty)
            .await?
            .unwrap_or_default();
        let payments = self
            .list::<PaymentPage>(&["wallets", account_id, "payments"], Missing::IsEmpty)
            .await?;
        let orders = self
            .list::<OrderPage>(&["accounts", account_id, "orders"], Missing::IsEmpty)
            .await?;
        let stats_facts = self.stats_facts(&orders).await?;
        Ok(AccountSnapshot {
            account_id: account_id.to_owned(),
            orders,
            stats,
            stats_facts,
            points,
            ledger,
            wallet,
            payments,
        })
    }

    /// `GET /stats/orders/{id}` for each distinct order, one after the other: accounts are
    /// already read `concurrency` at a time, and reading one account's facts in parallel too
    /// would multiply the requests in flight beyond what the caller asked for.
    async fn stats_facts(&self, orders: &[Order]) -> Result<Vec<StatsFact>, CheckError> {
        let mut asked = HashSet::with_capacity(orders.len());
        let mut facts = Vec::with_capacity(orders.len());
        for order in orders.iter().filter(|o| asked.insert(o.id.as_str())) {
            if let Some(fact) = self
                .get::<StatsFact>(&["stats", "orders", &order.id], Missing::IsEmpty)
                .await?
            {
                facts.push(fact);
            }
        }
        Ok(facts)
    }

    /// `GET /stats`.
    pub(crate) async fn totals(&self) -> Result<Totals, CheckError> {
        self.get::<Totals>(&["stats"], Missing::IsError)
            .await
            .map(Option::unwrap_or_default)
    }

    /// `GET /progress`, waiting at most `timeout` for the answer.
    pub(crate) async fn progress(&self, timeout: Duration) -> Result<Progress, CheckError> {
        let url = self.url(&["progress"], &[]);
        self.get_url::<Progress>(url, Missing::IsError, timeout)
            .await
            .map(Option::unwrap_or_default)
    }

    /// `GET /orders/{id}`; `None` for a 404.
    pub(crate) async fn order(&self, order_id: &str) -> Result<Option<Order>, CheckError> {
        self.get::<Order>(&["orders", order_id], Missing::IsEmpty)
            .await
    }

    /// Every item of a paginated listing.
    async fn list<P: Page>(
        &self,
        segments: &[&str],
        missing: Missing,
    ) -> Result<Vec<P::Item>, CheckError> {
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        let mut after: Option<String> = None;
        for _ in 0..PAGES_MAX {
            let mut query = vec![("limit", PAGE_LIMIT)];
            if let Some(after) = &after {
                query.push(("after", after.as_str()));
            }
            let url = self.url(segments, &query);
            let Some(page) = self
                .get_url::<P>(url.clone(), missing, READ_TIMEOUT)
                .await?
            else {
                return Ok(items);
            };
            let (page_items, next) = page.into_parts();
            items.extend(page_items);
            match next {
                None => return Ok(items),
                Some(cursor) => {
                    if !seen.insert(cursor.clone()) {
                        return Err(CheckError::Paging {
                            url: url.to_string(),
                            cursor,
                        });
                    }
                    after = Some(cursor);
                }
            }
        }
        Err(CheckError::TooManyPages {
            url: self.url(segments, &[]).to_string(),
            pages: PAGES_MAX,
        })
    }

    async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        missing: Missing,
    ) -> Result<Option<T>, CheckError> {
        self.get_url(self.url(segments, &[]), missing, READ_TIMEOUT)
            .await
    }

    /// One GET of at most `timeout`: `Ok(None)` for a 404 that means "nothing recorded".
    async fn get_url<T: DeserializeOwned>(
        &self,
        url: Url,
        missing: Missing,
        timeout: Duration,
    ) -> Result<Option<T>, CheckError> {
        let shown = url.to_string();
        let unreachable = |e: reqwest::Error| CheckError::Unreachable {
            url: shown.clone(),
            detail: error_chain(&e.without_url()),
        };
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(timeout)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let body = response.text().await.map_err(unreachable)?;
        if status == StatusCode::NOT_FOUND && missing == Missing::IsEmpty {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(CheckError::Status {
                url: shown,
                status: status.as_u16(),
                body: excerpt(&body),
            });
        }
        serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| CheckError::BadJson {
                url: shown,
                detail: format!("{e}; the body starts with {:?}", excerpt(&body)),
            })
    }
}

fn endpoint(base: &Url, segments: &[&str], query: &[(&str, &str)]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    url
}

/// An error and every cause under it, on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let line = c.to_string();
        if !text.ends_with(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = c.source();
    }
    text
}

fn excerpt(body: &str) -> String {
    let mut chars = body.chars();
    let mut shown: String = chars.by_ref().take(BODY_SHOWN_CHARS).collect();
    if chars.next().is_some() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(url: &str) -> Url {
        let client = reqwest::Client::new();
        Api::new(&client, url).map(|api| api.base).unwrap()
    }

    #[test]
    fn endpoints_append_to_the_base_with_or_without_a_trailing_slash() {
        for b in ["http://127.0.0.1:8080", "http://127.0.0.1:8080/"] {
            let url = endpoint(
                &base(b),
                &["accounts", "acc_1", "orders"],
                &[("limit", "10")],
            );
            assert_eq!(
                url.as_str(),
                "http://127.0.0.1:8080/accounts/acc_1/orders?limit=10"
            );
        }
        let url = endpoint(&base("http://h/api/?x=1#f"), &["stats"], &[]);
        assert_eq!(url.as_str(), "http://h/api/stats");
    }

    #[test]
    fn ids_are_percent_encoded_so_they_stay_one_segment() {
        let url = endpoint(
            &base("http://h"),
            &["orders", "a/../b?c"],
            &[("after", "x&y")],
        );
        assert_eq!(url.as_str(), "http://h/orders/a%2F..%2Fb%3Fc?after=x%26y");
    }

    #[test]
    fn a_base_url_that_is_not_http_is_refused() {
        let client = reqwest::Client::new();
        for bad in ["", "127.0.0.1:8080", "ftp://h", "mailto:x@y"] {
            match Api::new(&client, bad) {
                Err(CheckError::BaseUrl { url, .. }) => assert_eq!(url, bad),
                Err(other) => panic!("{bad:?}: wrong error {other}"),
                Ok(_) => panic!("{bad:?} was accepted"),
            }
        }
    }

    #[test]
    fn long_bodies_are_cut() {
        let body = "x".repeat(BODY_SHOWN_CHARS + 5);
        let shown = excerpt(&body);
        assert_eq!(shown.chars().count(), BODY_SHOWN_CHARS + 1);
        assert!(shown.ends_with('…'));
        assert_eq!(excerpt("short"), "short");
    }
}
