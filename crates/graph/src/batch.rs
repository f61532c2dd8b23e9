//! JSON batching (`$batch`): many small GETs in one round trip, at most 20 to a batch as Graph
//! allows. Graph throttles each request inside a batch on its own, so an inner 429 (or 503/504)
//! is sent again — alone, in the next batch — after its own `Retry-After`.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::header;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::info;

use crate::client::{Attempt, THROTTLE_SHARE, error_from_body, transport_failure};
use crate::error::Excerpt;
use crate::pacing::Cost;
use crate::retry::{RetryAfter, is_retryable_status};
use crate::{GraphClient, GraphError, Result, RetryPolicy};

/// Graph refuses a batch of more than 20 requests.
pub const MAX_BATCH: usize = 20;

#[derive(Deserialize)]
struct BatchBody {
    responses: Vec<InnerResponse>,
}

#[derive(Deserialize)]
struct InnerResponse {
    id: String,
    status: u16,
    /// Header values are strings in Graph's answers; a number (`"Retry-After": 5`) is read too.
    #[serde(default)]
    headers: HashMap<String, Value>,
    #[serde(default)]
    body: Value,
}

#[derive(Deserialize)]
struct PageBody<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

/// How one `$batch` answer settles its chunk of requests.
#[derive(Debug, Default)]
struct Settled {
    /// Requests answered for good, by their index in the paths.
    answered: Vec<(usize, Result<Value, GraphError>)>,
    /// Requests throttled, to send again.
    again: Vec<usize>,
    /// The longest wait the throttled ones asked for.
    wait: Option<Duration>,
}

/// Sorts the replies to the requests `chunk` (indexes into `paths`) sent to `url` on try
/// `attempt`: answered, or (while `may_retry`) to send again. An id that is not one of the
/// chunk's, or a request left unanswered, makes the whole answer malformed.
fn settle(
    replies: BatchBody,
    chunk: &[usize],
    paths: &[String],
    url: &str,
    attempt: u32,
    may_retry: bool,
    policy: &RetryPolicy,
) -> Result<Settled> {
    let mut settled = Settled::default();
    for reply in replies.responses {
        // Only the ids of this chunk are taken, so an id Microsoft invents never indexes past
        // the requests.
        let Some((index, path)) = reply
            .id
            .parse::<usize>()
            .ok()
            .filter(|i| chunk.contains(i))
            .and_then(|i| Some((i, paths.get(i)?)))
        else {
            return Err(GraphError::Malformed {
                url: url.to_string(),
                detail: format!("batch response has an unknown id '{}'", Excerpt(&reply.id)),
            });
        };
        let inner_url = format!("{url} {path}");
        if is_retryable_status(reply.status) && may_retry {
            let retry_after = reply
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                .map(|(_, v)| {
                    RetryAfter::read(match v {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    })
                });
            let wait = policy.delay_after(
                attempt,
                retry_after.as_ref(),
                &inner_url,
                Some(reply.status),
            );
            settled.wait = settled.wait.max(Some(wait));
            if !settled.again.contains(&index) {
                settled.again.push(index);
            }
            continue;
        }
        let answer = if (200..300).contains(&reply.status) {
            Ok(reply.body)
        } else if is_retryable_status(reply.status) {
            Err(GraphError::Throttled {
                attempts: attempt,
                last_status: reply.status,
                url: inner_url,
            })
        } else {
            let body = serde_json::to_vec(&reply.body).unwrap_or_default();
            Err(error_from_body(reply.status, &body, None, &inner_url))
        };
        settled.answered.push((index, answer));
    }
    if let Some(missing) = chunk
        .iter()
        .find(|i| !settled.again.contains(i) && !settled.answered.iter().any(|(a, _)| a == *i))
    {
        return Err(GraphError::Malformed {
            url: url.to_string(),
            detail: format!("batch response lacks request {missing}"),
        });
    }
    Ok(settled)
}

impl GraphClient {
    /// GETs each of `paths` (relative to the Graph version root, e.g. `/groups/{id}/members`)
    /// through `$batch` under `version` (`v1.0`), and answers each in order: its JSON body, or
    /// the error Graph gave it. The whole call fails only when the batch endpoint itself does.
    pub async fn batch_get(
        &self,
        version: &str,
        paths: &[String],
    ) -> Result<Vec<Result<Value, GraphError>>> {
        let url = self.absolute(&format!("{version}/$batch"))?;
        let mut answers: Vec<Option<Result<Value, GraphError>>> =
            paths.iter().map(|_| None).collect();
        let mut pending: Vec<usize> = (0..paths.len()).collect();
        let max = self.retry_policy().max_attempts.max(1);
        let mut attempt = 1;
        let costs: Vec<Vec<Cost>> = paths
            .iter()
            .map(|p| crate::pacing::costs_of_relative(p))
            .collect();
        let mut renewed = false;
        loop {
            if pending.is_empty() {
                // Graph checks the token of each request inside a batch: one that expired
                // during the batch shows as inner 401s, sent again once with a new token.
                let expired: Vec<usize> = answers
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| matches!(a, Some(Err(GraphError::Api { status: 401, .. }))))
                    .map(|(i, _)| i)
                    .collect();
                if expired.is_empty() || renewed {
                    break;
                }
                renewed = true;
                self.forget_token().await;
                pending = expired;
                attempt = 1;
            }
            let mut again = Vec::new();
            let mut longest_wait = None;
            let mut answered_any = false;
            for chunk in self.chunks(&pending, &costs) {
                let chunk = chunk.as_slice();
                let spent: Vec<Cost> = chunk.iter().flat_map(|&i| costs[i].clone()).collect();
                self.pace(&spent, attempt > 1).await;
                let requests: Vec<Value> = chunk
                    .iter()
                    .map(|&i| json!({"id": i.to_string(), "method": "GET", "url": paths[i]}))
                    .collect();
                let body = json!({ "requests": requests });
                let replies: BatchBody = self
                    .send_with(
                        &url,
                        |http, bearer| {
                            http.post(&url)
                                .header(header::AUTHORIZATION, bearer)
                                .json(&body)
                        },
                        |response| {
                            let url = url.clone();
                            async move {
                                match response.bytes().await {
                                    Ok(bytes) => {
                                        match crate::text::from_json::<BatchBody>(&bytes) {
                                            Ok(parsed) => Attempt::Done(parsed),
                                            Err(e) => Attempt::Fail(GraphError::Malformed {
                                                url: url.clone(),
                                                detail: format!("batch response: {e}"),
                                            }),
                                        }
                                    }
                                    Err(e) => transport_failure(&e),
                                }
                            }
                        },
                    )
                    .await?;
                for reply in &replies.responses {
                    let Some(index) = reply.id.parse::<usize>().ok().filter(|i| chunk.contains(i))
                    else {
                        continue;
                    };
                    let header = |name: &str| {
                        reply
                            .headers
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(name))
                            .map(|(_, v)| match v {
                                Value::String(text) => text.clone(),
                                other => other.to_string(),
                            })
                    };
                    self.counters().answered(reply.status);
                    self.heard(
                        &costs[index],
                        reply.status,
                        header(THROTTLE_SHARE).as_deref(),
                        header("retry-after").as_deref(),
                    );
                }
                let settled = settle(
                    replies,
                    chunk,
                    paths,
                    &url,
                    attempt,
                    attempt < max,
                    self.retry_policy(),
                )?;
                answered_any |= !settled.answered.is_empty();
                for (index, answer) in settled.answered {
                    if let Some(slot) = answers.get_mut(index) {
                        *slot = Some(answer);
                    }
                }
                again.extend(settled.again);
                longest_wait = longest_wait.max(settled.wait);
            }
            if let Some(wait) = longest_wait {
                // As for a request of its own: each wait at -v, the run sums them up once.
                info!(
                    url,
                    attempt,
                    requests = again.len(),
                    wait_ms = wait.as_millis() as u64,
                    "requests inside a batch were throttled; sending them again after a wait"
                );
                self.counters().retry_wait(wait);
                self.retry_policy().wait(wait).await;
            }
            pending = again;
            // Attempts count the rounds in which Graph let none of the requests through. A round
            // that got some answered shows the count is shared, not stuck: steps side by side
            // draw on the same budget, and a request that lost every race to them is not one
            // Graph refuses for good. Every such round settles at least one request, so this
            // still ends.
            if !answered_any {
                attempt += 1;
            }
        }
        answers
            .into_iter()
            .enumerate()
            .map(|(i, answer)| {
                answer.ok_or_else(|| GraphError::Malformed {
                    url: url.clone(),
                    detail: format!("batch response lacks request {i}"),
                })
            })
            .collect()
    }

    /// `pending` in batches of at most [`MAX_BATCH`], each small enough to fit Microsoft's
    /// budgets at once (a batch of 20 sign-in reads would overdraw a budget of 5).
    fn chunks(&self, pending: &[usize], costs: &[Vec<Cost>]) -> Vec<Vec<usize>> {
        let mut chunks: Vec<Vec<usize>> = Vec::new();
        let mut current: Vec<usize> = Vec::new();
        for &index in pending {
            let mut spent: Vec<Cost> = current.iter().flat_map(|&i| costs[i].clone()).collect();
            spent.extend(costs[index].iter().cloned());
            if !current.is_empty() && (current.len() >= MAX_BATCH || !self.fits_one_batch(&spent)) {
                chunks.push(std::mem::take(&mut current));
            }
            current.push(index);
        }
        if !current.is_empty() {
            chunks.push(current);
        }
        chunks
    }

    /// Every item of each collection in `paths`: the first pages through `$batch`, any further
    /// pages by their nextLink. Answers in the order of `paths`.
    pub async fn batch_collections<T: DeserializeOwned + Send + 'static>(
        &self,
        version: &str,
        paths: &[String],
    ) -> Result<Vec<Vec<T>>> {
        let first_pages = self.batch_get(version, paths).await?;
        let mut all = Vec::with_capacity(paths.len());
        for (path, answer) in paths.iter().zip(first_pages) {
            let page: PageBody<T> =
                serde_json::from_value(answer?).map_err(|e| GraphError::Malformed {
                    url: path.clone(),
                    detail: format!("batched page: {e}"),
                })?;
            let mut items = page.value;
            if let Some(next) = page.next_link {
                let mut pager = self.pages::<T>(&next);
                while let Some(more) = pager.next_page().await? {
                    items.extend(more);
                }
            }
            all.push(items);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn paths(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("/groups/{i}/members")).collect()
    }

    fn settle_bytes(bytes: &[u8], chunk: &[usize], may_retry: bool) -> Result<Settled> {
        let replies: BatchBody =
            serde_json::from_slice(bytes).map_err(|e| GraphError::Malformed {
                url: "u".into(),
                detail: e.to_string(),
            })?;
        settle(
            replies,
            chunk,
            &paths(30),
            "u",
            1,
            may_retry,
            &RetryPolicy::default(),
        )
    }

    #[test]
    fn hostile_ids_and_retry_afters_are_refused_or_capped() {
        for id in ["99", "-1", "18446744073709551616", "", "0x1", "١"] {
            let body = json!({"responses": [{"id": id, "status": 200, "body": {}}]});
            let err = settle_bytes(body.to_string().as_bytes(), &[0], true).unwrap_err();
            assert!(err.to_string().contains("unknown id"), "{id}: {err}");
        }
        let body = json!({"responses": [
            {"id": "0", "status": 429, "headers": {"Retry-After": "1e20"}},
            {"id": "1", "status": 503, "headers": {"retry-after": 7}},
            {"id": "1", "status": 429, "headers": {"retry-after": [1]}},
            {"id": "2", "status": 200, "body": {"value": []}},
        ]});
        let settled = settle_bytes(body.to_string().as_bytes(), &[0, 1, 2], true).unwrap();
        assert_eq!(settled.again, vec![0, 1], "each once");
        assert_eq!(settled.wait, Some(crate::retry::MAX_RETRY_AFTER));
        assert_eq!(settled.answered.len(), 1);
        let lacking = json!({"responses": [{"id": "0", "status": 200}]});
        let err = settle_bytes(lacking.to_string().as_bytes(), &[0, 1], true).unwrap_err();
        assert!(err.to_string().contains("lacks request 1"), "{err}");
    }

    proptest! {
        #[test]
        fn any_bytes_are_settled_or_refused_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            chunk in proptest::collection::vec(0usize..40, 0..20),
            may_retry in any::<bool>(),
        ) {
            let _ = settle_bytes(&bytes, &chunk, may_retry);
        }

        #[test]
        fn any_json_replies_are_settled_or_refused_without_panicking(
            replies in proptest::collection::vec(
                (
                    prop_oneof![any::<String>(), (0usize..40).prop_map(|i| i.to_string())],
                    any::<u16>(),
                    proptest::option::of(prop_oneof![
                        any::<String>().prop_map(serde_json::Value::from),
                        any::<f64>().prop_map(serde_json::Value::from),
                        any::<i64>().prop_map(serde_json::Value::from),
                        "[0-9]{1,30}(e[0-9]{1,3})?".prop_map(serde_json::Value::from),
                    ]),
                    any::<String>(),
                ),
                0..25,
            ),
            chunk in proptest::collection::vec(0usize..40, 0..20),
        ) {
            let responses: Vec<Value> = replies
                .into_iter()
                .map(|(id, status, retry_after, message)| {
                    let mut reply = json!({"id": id, "status": status, "body": {"error": {"code": "x", "message": message}}});
                    if let Some(value) = retry_after {
                        reply["headers"] = json!({"Retry-After": value});
                    }
                    reply
                })
                .collect();
            let body = json!({"responses": responses}).to_string();
            if let Ok(settled) = settle_bytes(body.as_bytes(), &chunk, true) {
                prop_assert!(settled.wait.is_none_or(|w| w <= crate::retry::MAX_RETRY_AFTER.max(Duration::from_secs(60))));
                for i in &chunk {
                    prop_assert!(settled.again.contains(i) || settled.answered.iter().any(|(a, _)| a == i));
                }
            }
        }

        #[test]
        fn well_formed_replies_settle_each_request_by_its_status(
            statuses in proptest::collection::vec(
                (prop_oneof![Just(200u16), Just(204), Just(404), Just(403), Just(429), Just(503), Just(504)], any::<u32>()),
                1..=MAX_BATCH,
            ),
            may_retry in any::<bool>(),
        ) {
            let chunk: Vec<usize> = (0..statuses.len()).map(|i| i + 5).collect();
            let responses: Vec<Value> = chunk
                .iter()
                .zip(&statuses)
                .rev()
                .map(|(i, (status, seconds))| json!({
                    "id": i.to_string(),
                    "status": status,
                    "headers": {"Retry-After": seconds.to_string()},
                    "body": if *status < 300 { json!({"value": [i]}) } else { json!({"error": {"code": "c", "message": "m"}}) },
                }))
                .collect();
            let body = json!({"responses": responses}).to_string();
            let settled = settle_bytes(body.as_bytes(), &chunk, may_retry).unwrap();
            let mut expected_wait = None;
            for (i, (status, seconds)) in chunk.iter().zip(&statuses) {
                let retryable = matches!(status, 429 | 503 | 504);
                let answer = settled.answered.iter().find(|(a, _)| a == i).map(|(_, r)| r);
                if retryable && may_retry {
                    prop_assert!(settled.again.contains(i) && answer.is_none());
                    let wait = Duration::from_secs((*seconds).into()).min(crate::retry::MAX_RETRY_AFTER);
                    expected_wait = expected_wait.max(Some(wait));
                } else {
                    prop_assert!(!settled.again.contains(i));
                    match (status, answer) {
                        (200 | 204, Some(Ok(value))) => prop_assert_eq!(value, &json!({"value": [i]})),
                        (429 | 503 | 504, Some(Err(GraphError::Throttled { last_status, .. }))) => {
                            prop_assert_eq!(last_status, status)
                        }
                        (403 | 404, Some(Err(GraphError::Api { status: s, code, .. }))) => {
                            prop_assert_eq!((s, code.as_str()), (status, "c"))
                        }
                        other => prop_assert!(false, "{:?}", other),
                    }
                }
            }
            prop_assert_eq!(settled.wait, expected_wait);
        }
    }
}
