//! Outlook calendars through Microsoft Graph: the signed-in person, a calendar view with
//! recurrences expanded (every page), free/busy and working hours (`getSchedule`), and events
//! created with a `transactionId`, moved and cancelled. Works with a delegated token (a connected
//! account) or an app-only client (application permissions). Times are asked for in UTC.
//!
//! Throttling (429, including Outlook's 4-concurrent-requests-per-mailbox limit) and 503/504 are
//! retried after `Retry-After`, else with backoff; a create is safe to retry because its
//! `transactionId` makes Outlook answer a repeat with the event already made.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::delegated::SecretToken;
use crate::retry::parse_retry_after;
use crate::{GraphClient, GraphError};

/// Whose calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mailbox {
    /// The signed-in person's own (delegated tokens only).
    Me,
    /// Anyone's, by user principal name or id.
    User(String),
}

impl Mailbox {
    fn path(&self) -> String {
        match self {
            Self::Me => "me".to_string(),
            Self::User(user) => format!(
                "users/{}",
                url::form_urlencoded::byte_serialize(user.as_bytes()).collect::<String>()
            ),
        }
    }
}

/// How requests are authorised.
pub enum Bearer {
    /// A connected account's access token.
    Delegated(SecretToken),
    /// The connection's app, with application permissions.
    App(Arc<GraphClient>),
}

#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("Microsoft Graph refused {what} ({status} {code}): {message}{}", fix(.status, .code))]
    Refused {
        what: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error(
        "Microsoft Graph kept throttling {what} after {attempts} tries; try again in a few minutes"
    )]
    Throttled { what: String, attempts: u32 },
    #[error("could not reach Microsoft Graph for {what}: {message}")]
    Unreachable { what: String, message: String },
    #[error("Microsoft Graph's answer to {what} could not be read: {problem}")]
    Unreadable { what: String, problem: String },
    #[error(transparent)]
    Token(#[from] GraphError),
}

fn fix(status: &u16, code: &str) -> &'static str {
    match (*status, code) {
        (401, _) => {
            ". The token was not accepted: refresh the account (`m365sync account refresh`) or reconnect it"
        }
        (403, _) => {
            ". The account or app lacks the calendar permission for this mailbox: it needs Calendars.ReadWrite (and .Shared for another person's calendar), or the application permission with an access policy that allows the mailbox"
        }
        (404, "MailboxNotEnabledForRESTAPI") => {
            ". The person has no Exchange Online mailbox: give them a licence with Exchange, or choose another mailbox"
        }
        (404, "ErrorInvalidUser") => ". Check the mailbox's address",
        (404, _) => ". The event is gone: it may have been deleted in Outlook",
        (400, "TimeZoneNotSupportedException") => ". Give an IANA or Windows time-zone name",
        _ => "",
    }
}

impl CalendarError {
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A date and time as Outlook writes them: a wall-clock time and the zone it is in.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct DateTimeZone {
    #[serde(rename = "dateTime")]
    pub date_time: String,
    #[serde(rename = "timeZone")]
    pub time_zone: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub id: String,
    pub display_name: Option<String>,
    pub user_principal_name: Option<String>,
    pub mail: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OnlineMeeting {
    #[serde(rename = "joinUrl")]
    pub join_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub id: String,
    pub subject: Option<String>,
    pub show_as: Option<String>,
    pub start: DateTimeZone,
    pub end: DateTimeZone,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub transaction_id: Option<String>,
    #[serde(default)]
    pub is_cancelled: bool,
    #[serde(default)]
    pub is_all_day: bool,
    pub web_link: Option<String>,
    pub online_meeting: Option<OnlineMeeting>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleItem {
    pub status: String,
    pub start: DateTimeZone,
    pub end: DateTimeZone,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ZoneName {
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkingHoursModel {
    #[serde(default)]
    pub days_of_week: Vec<String>,
    pub start_time: String,
    pub end_time: String,
    pub time_zone: ZoneName,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleError {
    pub message: Option<String>,
    pub response_code: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schedule {
    pub schedule_id: String,
    #[serde(default)]
    pub schedule_items: Vec<ScheduleItem>,
    pub working_hours: Option<WorkingHoursModel>,
    pub error: Option<ScheduleError>,
}

/// An event to create.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub subject: String,
    /// UTC times, `YYYY-MM-DDTHH:MM:SS`.
    pub start_utc: String,
    pub end_utc: String,
    /// (address, name)
    pub attendees: Vec<(String, Option<String>)>,
    pub location: Option<String>,
    pub online_meeting: bool,
    pub transaction_id: String,
}

#[derive(Deserialize)]
struct Page<T> {
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink")]
    next_link: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorInner,
}

#[derive(Deserialize)]
struct ErrorInner {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Tries per request before giving up on throttling.
const MAX_ATTEMPTS: u32 = 8;
/// The largest page Outlook gives for a calendar view.
const PAGE_SIZE: u32 = 100;

pub struct CalendarClient {
    http: reqwest::Client,
    graph: String,
    bearer: Bearer,
}

impl CalendarClient {
    /// `graph` is the cloud's Graph base (no trailing slash).
    pub fn new(
        graph: &str,
        bearer: Bearer,
        extra_ca_pem: Option<&[u8]>,
    ) -> Result<Self, CalendarError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("m365sync/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = extra_ca_pem {
            builder = builder.tls_certs_merge(crate::parse_ca_bundle(pem)?);
        }
        let http = builder.build().map_err(|e| CalendarError::Unreachable {
            what: "setting up".into(),
            message: e.to_string(),
        })?;
        Ok(Self {
            http,
            graph: graph.trim_end_matches('/').to_string(),
            bearer,
        })
    }

    async fn authorization(&self) -> Result<String, CalendarError> {
        Ok(match &self.bearer {
            Bearer::Delegated(token) => format!("Bearer {}", token.expose()),
            Bearer::App(client) => client.token().await?.bearer(),
        })
    }

    /// One request, retried through throttling; returns the status and body of the answer.
    async fn send(
        &self,
        what: &str,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, bytes::Bytes), CalendarError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(method.clone(), url)
                .header("authorization", self.authorization().await?)
                .header("prefer", "outlook.timezone=\"UTC\"");
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) if attempt < MAX_ATTEMPTS && (e.is_connect() || e.is_timeout()) => {
                    tokio::time::sleep(backoff(attempt)).await;
                    continue;
                }
                Err(e) => {
                    return Err(CalendarError::Unreachable {
                        what: what.to_string(),
                        message: e.without_url().to_string(),
                    });
                }
            };
            let status = response.status();
            if matches!(status.as_u16(), 429 | 503 | 504) {
                if attempt >= MAX_ATTEMPTS {
                    return Err(CalendarError::Throttled {
                        what: what.to_string(),
                        attempts: attempt,
                    });
                }
                let wait = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after)
                    .unwrap_or_else(|| backoff(attempt))
                    .min(Duration::from_secs(60));
                tracing::debug!(
                    what,
                    status = status.as_u16(),
                    ?wait,
                    "calendar request throttled; waiting"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            let bytes = response
                .bytes()
                .await
                .map_err(|e| CalendarError::Unreachable {
                    what: what.to_string(),
                    message: e.without_url().to_string(),
                })?;
            if !status.is_success() {
                let (code, message) = serde_json::from_slice::<ErrorBody>(&bytes)
                    .map(|b| (b.error.code, b.error.message))
                    .unwrap_or_else(|_| {
                        (
                            String::new(),
                            crate::error::Excerpt(&String::from_utf8_lossy(&bytes)).to_string(),
                        )
                    });
                return Err(CalendarError::Refused {
                    what: what.to_string(),
                    status: status.as_u16(),
                    code,
                    message,
                });
            }
            return Ok((status, bytes));
        }
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        method: Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<T, CalendarError> {
        let (_, bytes) = self.send(what, method, url, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| CalendarError::Unreadable {
            what: what.to_string(),
            problem: e.to_string(),
        })
    }

    /// The signed-in person (delegated tokens only).
    pub async fn me(&self) -> Result<Person, CalendarError> {
        let url = format!(
            "{}/v1.0/me?$select=id,displayName,userPrincipalName,mail",
            self.graph
        );
        self.json("reading the signed-in person", Method::GET, &url, None)
            .await
    }

    /// Every event instance of `mailbox` that meets the window (UTC, `YYYY-MM-DDTHH:MM:SS`),
    /// recurring ones expanded, following every page.
    pub async fn calendar_view(
        &self,
        mailbox: &Mailbox,
        start_utc: &str,
        end_utc: &str,
    ) -> Result<Vec<Event>, CalendarError> {
        let mut url = url::Url::parse(&format!(
            "{}/v1.0/{}/calendarView",
            self.graph,
            mailbox.path()
        ))
        .map_err(|e| CalendarError::Unreadable {
            what: "the calendar view's address".into(),
            problem: e.to_string(),
        })?;
        url.query_pairs_mut()
            .append_pair("startDateTime", &format!("{start_utc}Z"))
            .append_pair("endDateTime", &format!("{end_utc}Z"))
            .append_pair(
                "$select",
                "id,subject,showAs,start,end,type,transactionId,isCancelled,isAllDay,webLink,onlineMeeting",
            )
            .append_pair("$top", &PAGE_SIZE.to_string());
        let mut next = Some(url.to_string());
        let mut events = Vec::new();
        let mut pages = 0;
        while let Some(link) = next {
            pages += 1;
            if pages > 1_000 {
                return Err(CalendarError::Unreadable {
                    what: "the calendar view".into(),
                    problem: "more than 1000 pages; ask for a shorter window".into(),
                });
            }
            // Follow a link only to our own Graph host: a stored or sent link is never trusted.
            if !link.starts_with(&self.graph) {
                return Err(CalendarError::Unreadable {
                    what: "the calendar view".into(),
                    problem: "its next page is on another host".into(),
                });
            }
            let page: Page<Event> = self
                .json("reading the calendar", Method::GET, &link, None)
                .await?;
            events.extend(page.value);
            next = page.next_link;
        }
        Ok(events)
    }

    /// Free/busy and working hours of each of `people` (addresses) for the window.
    pub async fn schedule(
        &self,
        mailbox: &Mailbox,
        people: &[String],
        start_utc: &str,
        end_utc: &str,
    ) -> Result<Vec<Schedule>, CalendarError> {
        let url = format!(
            "{}/v1.0/{}/calendar/getSchedule",
            self.graph,
            mailbox.path()
        );
        let body = json!({
            "schedules": people,
            "startTime": { "dateTime": start_utc, "timeZone": "UTC" },
            "endTime": { "dateTime": end_utc, "timeZone": "UTC" },
            "availabilityViewInterval": 30,
        });
        let page: Page<Schedule> = self
            .json("reading free/busy", Method::POST, &url, Some(&body))
            .await?;
        Ok(page.value)
    }

    /// Creates an event. A retry with the same `transaction_id` gets the event already made.
    pub async fn create_event(
        &self,
        mailbox: &Mailbox,
        event: &NewEvent,
    ) -> Result<Event, CalendarError> {
        let url = format!("{}/v1.0/{}/events", self.graph, mailbox.path());
        let attendees: Vec<Value> = event
            .attendees
            .iter()
            .map(|(address, name)| {
                json!({
                    "emailAddress": { "address": address, "name": name.clone().unwrap_or_else(|| address.clone()) },
                    "type": "required",
                })
            })
            .collect();
        let mut body = json!({
            "subject": event.subject,
            "start": { "dateTime": event.start_utc, "timeZone": "UTC" },
            "end": { "dateTime": event.end_utc, "timeZone": "UTC" },
            "attendees": attendees,
            "showAs": "busy",
            "transactionId": event.transaction_id,
        });
        if let Some(location) = &event.location {
            body["location"] = json!({ "displayName": location });
        }
        if event.online_meeting {
            body["isOnlineMeeting"] = json!(true);
            body["onlineMeetingProvider"] = json!("teamsForBusiness");
        }
        self.json("creating the event", Method::POST, &url, Some(&body))
            .await
    }

    pub async fn event(&self, mailbox: &Mailbox, id: &str) -> Result<Event, CalendarError> {
        let url = self.event_url(mailbox, id);
        self.json("reading the event", Method::GET, &url, None)
            .await
    }

    /// Moves an event to new UTC times.
    pub async fn move_event(
        &self,
        mailbox: &Mailbox,
        id: &str,
        start_utc: &str,
        end_utc: &str,
    ) -> Result<Event, CalendarError> {
        let url = self.event_url(mailbox, id);
        let body = json!({
            "start": { "dateTime": start_utc, "timeZone": "UTC" },
            "end": { "dateTime": end_utc, "timeZone": "UTC" },
        });
        self.json("moving the event", Method::PATCH, &url, Some(&body))
            .await
    }

    /// Cancels an event, telling its attendees with `comment`. An event already gone counts as
    /// cancelled, so that a retried cancel succeeds.
    pub async fn cancel_event(
        &self,
        mailbox: &Mailbox,
        id: &str,
        comment: &str,
    ) -> Result<(), CalendarError> {
        let url = format!("{}/cancel", self.event_url(mailbox, id));
        let body = json!({ "comment": comment });
        match self
            .send("cancelling the event", Method::POST, &url, Some(&body))
            .await
        {
            Ok(_) => Ok(()),
            Err(CalendarError::Refused { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn event_url(&self, mailbox: &Mailbox, id: &str) -> String {
        format!(
            "{}/v1.0/{}/events/{}",
            self.graph,
            mailbox.path(),
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        )
    }
}

fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(250) * 2u32.saturating_pow(attempt.min(6));
    base + Duration::from_millis(fastrand::u64(0..250))
}
