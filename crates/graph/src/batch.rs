//! JSON batching (`$batch`): many small GETs in one round trip, at most 20 to a batch as Graph
//! allows. Graph throttles each request inside a batch on its own, so an inner 429 (or 503/504)
//! is sent again — alone, in the next batch — after its own `Retry-After`.

use std::collections::HashMap;

use reqwest::header;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tracing::warn;

use crate::client::{Attempt, error_from_body, transport_failure};
use crate::retry::{is_retryable_status, parse_retry_after};
use crate::{GraphClient, GraphError, Result};

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
    #[serde(default)]
    headers: HashMap<String, String>,
    #[serde(default)]
    body: Value,
}

#[derive(Deserialize)]
struct PageBody<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
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
        while !pending.is_empty() {
            let mut again = Vec::new();
            let mut longest_wait = None;
            for chunk in pending.chunks(MAX_BATCH) {
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
                for reply in replies.responses {
                    let Some(index) = reply.id.parse::<usize>().ok().filter(|i| chunk.contains(i))
                    else {
                        return Err(GraphError::Malformed {
                            url: url.clone(),
                            detail: format!("batch response has an unknown id '{}'", reply.id),
                        });
                    };
                    if is_retryable_status(reply.status) && attempt < max {
                        let retry_after = reply
                            .headers
                            .iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                            .and_then(|(_, v)| parse_retry_after(v));
                        let wait = self.retry_policy().delay(attempt, retry_after);
                        longest_wait =
                            Some(longest_wait.map_or(wait, |w: std::time::Duration| w.max(wait)));
                        again.push(index);
                        continue;
                    }
                    let inner_url = format!("{url} {}", paths[index]);
                    answers[index] = Some(if (200..300).contains(&reply.status) {
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
                    });
                }
                if let Some(missing) = chunk
                    .iter()
                    .find(|&&i| answers[i].is_none() && !again.contains(&i))
                {
                    return Err(GraphError::Malformed {
                        url: url.clone(),
                        detail: format!("batch response lacks request {missing}"),
                    });
                }
            }
            if let Some(wait) = longest_wait {
                warn!(
                    url,
                    attempt,
                    requests = again.len(),
                    wait_ms = wait.as_millis() as u64,
                    "requests inside a batch were throttled; sending them again after a wait"
                );
                self.retry_policy().wait(wait).await;
            }
            pending = again;
            attempt += 1;
        }
        Ok(answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| unreachable!("every request was answered")))
            .collect())
    }

    /// Every item of each collection in `paths`: the first pages through `$batch`, any further
    /// pages by their nextLink. Answers in the order of `paths`.
    pub async fn batch_collections<T: DeserializeOwned>(
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
