//! Outlook calendars: `/me`, mailbox settings (time zone, working hours), events single and
//! recurring, `calendarView` with recurrences expanded, `getSchedule`, and event create, update,
//! cancel and delete with `transactionId`.
//!
//! Each mailbox is seeded on first use from its user: a time zone named the Windows way, working
//! hours, a daily stand-up, weekly and fortnightly meetings, and single events that are busy,
//! tentative, out of office, free and working elsewhere. Outlook's limit of 4 concurrent requests
//! per app and mailbox is enforced (429 `ApplicationThrottled`, `MailboxConcurrency`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;
use serde_json::{Value, json};

use crate::SimState;
use crate::api::{graph_error, graph_ok, param, query_pairs, take_fault_response};
use crate::people::SimUser;
use crate::state::{Tenant, lock};

/// Outlook's limit of concurrent requests per app and mailbox.
pub const MAILBOX_CONCURRENCY: usize = 4;
const READ_SCOPES: &[&str] = &[
    "Calendars.Read",
    "Calendars.ReadWrite",
    "Calendars.Read.Shared",
    "Calendars.ReadWrite.Shared",
];
const WRITE_SCOPES: &[&str] = &["Calendars.ReadWrite", "Calendars.ReadWrite.Shared"];
const SHARED_SCOPES: &[&str] = &["Calendars.Read.Shared", "Calendars.ReadWrite.Shared"];
const READ_ROLES: &[&str] = &["Calendars.Read", "Calendars.ReadWrite"];
const WRITE_ROLES: &[&str] = &["Calendars.ReadWrite"];
const SETTINGS_SCOPES: &[&str] = &["MailboxSettings.Read", "MailboxSettings.ReadWrite"];
const SETTINGS_ROLES: &[&str] = &["MailboxSettings.Read", "MailboxSettings.ReadWrite"];

/// The simulator's own table of the Windows time zones its mailboxes use: Outlook names zones
/// the Windows way. (The client has its own, complete one; they must not share it.)
const WINDOWS_ZONES: &[(&str, Tz)] = &[
    ("GMT Standard Time", chrono_tz::Europe::London),
    ("W. Europe Standard Time", chrono_tz::Europe::Berlin),
    ("Eastern Standard Time", chrono_tz::America::New_York),
    ("Pacific Standard Time", chrono_tz::America::Los_Angeles),
    ("AUS Eastern Standard Time", chrono_tz::Australia::Sydney),
    ("India Standard Time", chrono_tz::Asia::Kolkata),
    ("Romance Standard Time", chrono_tz::Europe::Paris),
];

fn zone_named(name: &str) -> Option<Tz> {
    let name = name.trim();
    if matches!(
        name,
        "UTC" | "Etc/UTC" | "Coordinated Universal Time" | "tzone://Microsoft/Utc"
    ) {
        return Some(Tz::UTC);
    }
    WINDOWS_ZONES
        .iter()
        .find(|(w, _)| w.eq_ignore_ascii_case(name))
        .map(|(_, tz)| *tz)
        .or_else(|| name.parse::<Tz>().ok())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pattern {
    Daily,
    Weekly,
}

#[derive(Clone, Copy)]
enum RangeEnd {
    NoEnd,
    EndDate(NaiveDate),
    Numbered(u32),
}

#[derive(Clone)]
struct Recurrence {
    pattern: Pattern,
    interval: u32,
    days: Vec<Weekday>,
    start_date: NaiveDate,
    end: RangeEnd,
}

#[derive(Clone)]
struct SimEvent {
    id: String,
    subject: String,
    /// Wall-clock start and end in `zone`, as the organiser gave them.
    start: NaiveDateTime,
    end: NaiveDateTime,
    zone: Tz,
    zone_name: String,
    show_as: String,
    recurrence: Option<Recurrence>,
    location: String,
    attendees: Vec<Value>,
    online: bool,
    transaction_id: Option<String>,
    created: DateTime<Utc>,
    modified: DateTime<Utc>,
    change: u64,
}

struct Mailbox {
    zone_name: &'static str,
    work_start: NaiveTime,
    work_end: NaiveTime,
    events: Vec<SimEvent>,
}

/// Every mailbox's calendar, and the requests in flight against each.
#[derive(Default)]
pub(crate) struct Calendars {
    mailboxes: Mutex<HashMap<(u64, u64), Mailbox>>,
    in_flight: Mutex<HashMap<(String, u64, u64), usize>>,
    /// Milliseconds each calendar request is held before it is answered: how tests make
    /// requests overlap.
    hold_millis: AtomicU64,
    next_id: AtomicU64,
    /// Events created, by every mailbox: for tests that count double bookings.
    pub(crate) created: AtomicU64,
}

impl Calendars {
    pub(crate) fn set_hold(&self, millis: u64) {
        self.hold_millis.store(millis, Ordering::SeqCst);
    }

    fn new_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::SeqCst);
        let u = uuid::Uuid::new_v4();
        let mut bytes = n.to_be_bytes().to_vec();
        bytes.extend_from_slice(u.as_bytes());
        format!("AAMkA{}", URL_SAFE_NO_PAD.encode(bytes))
    }
}

fn at(d: NaiveDate, h: u32, m: u32) -> NaiveDateTime {
    d.and_time(NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default())
}

fn next_weekday(mut d: NaiveDate, skip: u32) -> NaiveDate {
    let mut left = skip;
    loop {
        d += Duration::days(1);
        if !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
            if left == 0 {
                return d;
            }
            left -= 1;
        }
    }
}

fn seed_mailbox(calendars: &Calendars, user: &SimUser) -> Mailbox {
    let (zone_name, zone) = WINDOWS_ZONES[(user.index % 5) as usize];
    let (work_start, work_end) = if user.index % 3 == 2 {
        (
            NaiveTime::from_hms_opt(8, 0, 0),
            NaiveTime::from_hms_opt(16, 30, 0),
        )
    } else {
        (
            NaiveTime::from_hms_opt(9, 0, 0),
            NaiveTime::from_hms_opt(17, 0, 0),
        )
    };
    let today = Utc::now().with_timezone(&zone).date_naive();
    let created = Utc::now() - Duration::days(40);
    let event = |subject: &str, start, end, show_as: &str, recurrence| SimEvent {
        id: calendars.new_id(),
        subject: subject.to_string(),
        start,
        end,
        zone,
        zone_name: zone_name.to_string(),
        show_as: show_as.to_string(),
        recurrence,
        location: String::new(),
        attendees: Vec::new(),
        online: false,
        transaction_id: None,
        created,
        modified: created,
        change: 1,
    };
    let weekdays = vec![
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
    ];
    let standup_from = today - Duration::days(28);
    let one_to_one_day = if user.index.is_multiple_of(2) {
        Weekday::Tue
    } else {
        Weekday::Thu
    };
    let d1 = next_weekday(today, 0);
    let d2 = next_weekday(today, 1);
    let d3 = next_weekday(today, 2);
    let events = vec![
        event(
            "Team stand-up",
            at(standup_from, 9, 30),
            at(standup_from, 9, 45),
            "busy",
            Some(Recurrence {
                pattern: Pattern::Weekly,
                interval: 1,
                days: weekdays,
                start_date: standup_from,
                end: RangeEnd::NoEnd,
            }),
        ),
        event(
            "1:1 with manager",
            at(today - Duration::days(21), 14, 0),
            at(today - Duration::days(21), 15, 0),
            "busy",
            Some(Recurrence {
                pattern: Pattern::Weekly,
                interval: 1,
                days: vec![one_to_one_day],
                start_date: today - Duration::days(21),
                end: RangeEnd::EndDate(today + Duration::days(90)),
            }),
        ),
        event(
            "Planning",
            at(today - Duration::days(14), 10, 0),
            at(today - Duration::days(14), 11, 30),
            "busy",
            Some(Recurrence {
                pattern: Pattern::Weekly,
                interval: 2,
                days: vec![Weekday::Wed],
                start_date: today - Duration::days(14),
                end: RangeEnd::Numbered(20),
            }),
        ),
        event("Project review", at(d1, 11, 0), at(d1, 12, 0), "busy", None),
        event("Focus time", at(d1, 13, 0), at(d1, 15, 0), "free", None),
        event(
            "Customer call",
            at(d2, 12, 0),
            at(d2, 12, 30),
            "tentative",
            None,
        ),
        event("Dentist", at(d2, 16, 0), at(d2, 17, 0), "oof", None),
        event(
            "Working from the library",
            at(d3, 9, 0),
            at(d3, 17, 0),
            "workingElsewhere",
            None,
        ),
    ];
    Mailbox {
        zone_name,
        work_start: work_start.unwrap_or_default(),
        work_end: work_end.unwrap_or_default(),
        events,
    }
}

fn to_utc(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    // A wall-clock time skipped by a DST change is taken an hour later, as Outlook does.
    zone.from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(local + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&local))
}

/// One instance of an event: a single event, or an occurrence of a series on `date`.
struct Instance<'a> {
    event: &'a SimEvent,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    occurrence: Option<NaiveDate>,
}

fn occurrence_dates(r: &Recurrence, until: NaiveDate) -> Vec<NaiveDate> {
    let mut dates = Vec::new();
    let mut count = 0u32;
    let mut day = r.start_date;
    // Weeks are counted from the Sunday of the series' first week, as Outlook's firstDayOfWeek.
    let week_zero =
        r.start_date - Duration::days(r.start_date.weekday().num_days_from_sunday() as i64);
    while day <= until {
        if let RangeEnd::EndDate(end) = r.end
            && day > end
        {
            break;
        }
        if let RangeEnd::Numbered(n) = r.end
            && count >= n
        {
            break;
        }
        let hit = match r.pattern {
            Pattern::Daily => (day - r.start_date).num_days() % r.interval.max(1) as i64 == 0,
            Pattern::Weekly => {
                let week = (day - week_zero).num_days() / 7;
                week % r.interval.max(1) as i64 == 0 && r.days.contains(&day.weekday())
            }
        };
        if hit {
            dates.push(day);
            count += 1;
        }
        day += Duration::days(1);
    }
    dates
}

fn instances(events: &[SimEvent], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Instance<'_>> {
    let mut out = Vec::new();
    for event in events {
        match &event.recurrence {
            None => {
                let start = to_utc(event.zone, event.start);
                let end = to_utc(event.zone, event.end);
                if start < to && end > from {
                    out.push(Instance {
                        event,
                        start,
                        end,
                        occurrence: None,
                    });
                }
            }
            Some(r) => {
                let length = event.end - event.start;
                let until = to.with_timezone(&event.zone).date_naive() + Duration::days(1);
                for date in occurrence_dates(r, until) {
                    let local = date.and_time(event.start.time());
                    let start = to_utc(event.zone, local);
                    let end = to_utc(event.zone, local + length);
                    if start < to && end > from {
                        out.push(Instance {
                            event,
                            start,
                            end,
                            occurrence: Some(date),
                        });
                    }
                }
            }
        }
    }
    out.sort_by_key(|i| i.start);
    out
}

/// A wall-clock time with the seven fractional digits Outlook writes.
fn seven_digits(t: NaiveDateTime) -> String {
    use chrono::Timelike;
    format!(
        "{}.{:07}",
        t.format("%Y-%m-%dT%H:%M:%S"),
        t.nanosecond() / 100
    )
}

fn graph_time(t: DateTime<Utc>, zone: Tz, zone_label: &str) -> Value {
    json!({
        "dateTime": seven_digits(t.with_timezone(&zone).naive_local()),
        "timeZone": zone_label,
    })
}

fn recurrence_json(r: &Recurrence, zone_name: &str) -> Value {
    let days: Vec<String> = r
        .days
        .iter()
        .map(|d| {
            match d {
                Weekday::Mon => "monday",
                Weekday::Tue => "tuesday",
                Weekday::Wed => "wednesday",
                Weekday::Thu => "thursday",
                Weekday::Fri => "friday",
                Weekday::Sat => "saturday",
                Weekday::Sun => "sunday",
            }
            .to_string()
        })
        .collect();
    let (kind, end_date, count) = match r.end {
        RangeEnd::NoEnd => ("noEnd", "0001-01-01".to_string(), 0),
        RangeEnd::EndDate(d) => ("endDate", d.to_string(), 0),
        RangeEnd::Numbered(n) => ("numbered", "0001-01-01".to_string(), n),
    };
    json!({
        "pattern": {
            "type": if r.pattern == Pattern::Daily { "daily" } else { "weekly" },
            "interval": r.interval, "month": 0, "dayOfMonth": 0,
            "daysOfWeek": days, "firstDayOfWeek": "sunday", "index": "first",
        },
        "range": {
            "type": kind, "startDate": r.start_date.to_string(), "endDate": end_date,
            "recurrenceTimeZone": zone_name, "numberOfOccurrences": count,
        },
    })
}

fn event_json(
    instance: &Instance<'_>,
    owner: &SimUser,
    out_zone: Tz,
    out_label: &str,
    base_url: &str,
) -> Value {
    let e = instance.event;
    let (id, kind, master) = match (instance.occurrence, &e.recurrence) {
        (Some(date), _) => (
            format!("{}_{}", e.id, date.format("%Y%m%d")),
            "occurrence",
            Value::String(e.id.clone()),
        ),
        (None, Some(_)) => (e.id.clone(), "seriesMaster", Value::Null),
        (None, None) => (e.id.clone(), "singleInstance", Value::Null),
    };
    let recurrence = match (&e.recurrence, kind) {
        (Some(r), "seriesMaster") => recurrence_json(r, &e.zone_name),
        _ => Value::Null,
    };
    let change_key = URL_SAFE_NO_PAD.encode(format!("{}:{}", e.id, e.change));
    let mut body = json!({
        "@odata.etag": format!("W/\"{change_key}\""),
        "id": id,
        "createdDateTime": e.created.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "lastModifiedDateTime": e.modified.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "changeKey": change_key,
        "categories": [],
        "transactionId": e.transaction_id,
        "originalStartTimeZone": e.zone_name,
        "originalEndTimeZone": e.zone_name,
        "iCalUId": format!("040000008200E00074C5B7101A82E008{}", URL_SAFE_NO_PAD.encode(e.id.as_bytes())),
        "reminderMinutesBeforeStart": 15,
        "isReminderOn": true,
        "hasAttachments": false,
        "subject": e.subject,
        "bodyPreview": "",
        "importance": "normal",
        "sensitivity": "normal",
        "isAllDay": false,
        "isCancelled": false,
        "isOrganizer": true,
        "responseRequested": true,
        "seriesMasterId": master,
        "showAs": e.show_as,
        "type": kind,
    });
    let more = json!({
        "webLink": format!("{base_url}/owa/?itemid={id}&exvsurl=1&path=/calendar/item"),
        "onlineMeetingUrl": null,
        "isOnlineMeeting": e.online,
        "onlineMeetingProvider": if e.online { "teamsForBusiness" } else { "unknown" },
        "allowNewTimeProposals": true,
        "isDraft": false,
        "hideAttendees": false,
        "responseStatus": { "response": "organizer", "time": "0001-01-01T00:00:00Z" },
        "body": { "contentType": "html", "content": "" },
        "start": graph_time(instance.start, out_zone, out_label),
        "end": graph_time(instance.end, out_zone, out_label),
        "recurrence": recurrence,
        "attendees": e.attendees,
        "organizer": { "emailAddress": { "name": owner.display_name, "address": owner.mail.clone().unwrap_or_else(|| owner.upn.clone()) } },
    });
    let location = json!({
        "location": {
            "displayName": e.location, "locationType": "default",
            "uniqueIdType": if e.location.is_empty() { "unknown" } else { "private" },
            "address": {}, "coordinates": {},
        },
        "locations": if e.location.is_empty() { json!([]) } else { json!([{ "displayName": e.location, "locationType": "default" }]) },
        "onlineMeeting": if e.online {
            json!({ "joinUrl": format!("https://teams.microsoft.com/l/meetup-join/{}", URL_SAFE_NO_PAD.encode(e.id.as_bytes())) })
        } else { Value::Null },
    });
    for part in [more, location] {
        if let (Some(target), Value::Object(fields)) = (body.as_object_mut(), part) {
            target.extend(fields);
        }
    }
    body
}

/// Who asks, for which mailbox, and whether they may.
struct Caller<'a> {
    tenant: &'a Tenant,
    app_id: String,
    owner: SimUser,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Read,
    Write,
    Settings,
    /// Free/busy only: any calendar permission will do, for anyone's mailbox in the tenant.
    FreeBusy,
}

/// Checks the token and the permission for the mailbox `target` (`None` for `/me`), then
/// applies any fault injected for the tenant.
fn caller<'a>(
    state: &'a SimState,
    headers: &HeaderMap,
    target: Option<&str>,
    need: Need,
) -> Result<Caller<'a>, Response> {
    state.count(|s| s.graph_requests += 1);
    let bearer = crate::api::bearer_of(headers);
    let unauthorized = |message: &str| {
        graph_error(
            state,
            headers,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
    };
    let token = crate::identity::verify(&state.signing_key, bearer).map_err(|rejection| {
        unauthorized(match rejection {
            crate::identity::TokenRejection::Missing => "Access token is empty.",
            crate::identity::TokenRejection::Invalid => {
                "Access token validation failure. Invalid audience."
            }
            crate::identity::TokenRejection::Expired => {
                "Lifetime validation failed, the token is expired."
            }
        })
    })?;
    let tenant = state
        .tenant(&token.tenant_id)
        .ok_or_else(|| unauthorized("Access token validation failure."))?;
    if tenant.token_expired(token.generation) {
        return Err(unauthorized(
            "Lifetime validation failed, the token is expired.",
        ));
    }
    if let Some(response) = take_fault_response(state, headers, tenant) {
        return Err(response);
    }
    let me = token
        .user_id
        .as_deref()
        .and_then(|id| crate::delegated::find_user(tenant, id));
    let owner = match target {
        None => me.clone().ok_or_else(|| {
            graph_error(
                state,
                headers,
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "/me request is only valid with delegated authentication flow.",
            )
        })?,
        Some(key) => crate::delegated::find_user(tenant, key).ok_or_else(|| {
            graph_error(
                state,
                headers,
                StatusCode::NOT_FOUND,
                "ErrorInvalidUser",
                &format!("The requested user '{key}' is invalid."),
            )
        })?,
    };
    let own = me.as_ref().is_some_and(|m| m.id == owner.id);
    let granted = |scopes: &[&str], roles: &[&str]| {
        token.scopes.iter().any(|s| scopes.contains(&s.as_str()))
            || token.roles.iter().any(|r| roles.contains(&r.as_str()))
    };
    let allowed = match need {
        Need::Read => granted(READ_SCOPES, READ_ROLES),
        Need::Write => granted(WRITE_SCOPES, WRITE_ROLES),
        Need::Settings => granted(SETTINGS_SCOPES, SETTINGS_ROLES),
        Need::FreeBusy => granted(READ_SCOPES, READ_ROLES),
    };
    // A delegated caller reaches another person's calendar only with a `.Shared` permission.
    let reach = own
        || me.is_none()
        || need == Need::FreeBusy
        || token
            .scopes
            .iter()
            .any(|s| SHARED_SCOPES.contains(&s.as_str()));
    if !allowed || !reach {
        return Err(graph_error(
            state,
            headers,
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        ));
    }
    if !owner.has_mailbox {
        return Err(graph_error(
            state,
            headers,
            StatusCode::NOT_FOUND,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        ));
    }
    Ok(Caller {
        tenant,
        app_id: token.app_id,
        owner,
    })
}

/// A request counted against the mailbox's concurrency limit until dropped.
struct InFlight {
    state: Arc<SimState>,
    key: (String, u64, u64),
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut in_flight = lock(&self.state.calendars.in_flight);
        if let Some(n) = in_flight.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
    }
}

async fn admit(
    state: &Arc<SimState>,
    headers: &HeaderMap,
    caller: &Caller<'_>,
) -> Result<InFlight, Response> {
    let key = (
        caller.app_id.clone(),
        caller.tenant.index,
        caller.owner.index,
    );
    {
        let mut in_flight = lock(&state.calendars.in_flight);
        let n = in_flight.entry(key.clone()).or_default();
        if *n >= MAILBOX_CONCURRENCY {
            drop(in_flight);
            state.count(|s| s.throttled += 1);
            let mut response = graph_error(
                state,
                headers,
                StatusCode::TOO_MANY_REQUESTS,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
            );
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            return Err(response);
        }
        *n += 1;
    }
    let guard = InFlight {
        state: state.clone(),
        key,
    };
    let hold = state.calendars.hold_millis.load(Ordering::SeqCst);
    if hold > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(hold)).await;
    }
    Ok(guard)
}

/// Room mailboxes each simulated tenant has: `room1@DOMAIN` … `room3@DOMAIN` (either domain).
pub(crate) const ROOMS: u64 = 3;
/// Rooms' calendars are kept beside the users', under indexes no user has.
const ROOM_INDEX_BASE: u64 = u64::MAX - 1_000;

/// The room of `tenant` an address names, as its number (1 to [`ROOMS`]).
pub(crate) fn room_number(tenant: &crate::state::Tenant, address: &str) -> Option<u64> {
    let (local, domain) = address.trim().rsplit_once('@')?;
    let own_domain = domain.eq_ignore_ascii_case(&tenant.initial_domain)
        || domain.eq_ignore_ascii_case(&tenant.custom_domain);
    let number: u64 = local
        .to_ascii_lowercase()
        .strip_prefix("room")?
        .parse()
        .ok()?;
    (own_domain && (1..=ROOMS).contains(&number)).then_some(number)
}

/// A meeting room's calendar: open 08:00–18:00 in the tenant's first zone, a daily booking at
/// noon (a recurring series) and, for room 1, a workshop on the next working day.
fn seed_room(calendars: &Calendars, number: u64) -> Mailbox {
    let (zone_name, zone) = WINDOWS_ZONES[0];
    let today = Utc::now().with_timezone(&zone).date_naive();
    let created = Utc::now() - Duration::days(30);
    let event = |subject: &str, start, end, recurrence| SimEvent {
        id: calendars.new_id(),
        subject: subject.to_string(),
        start,
        end,
        zone,
        zone_name: zone_name.to_string(),
        show_as: "busy".to_string(),
        recurrence,
        location: format!("Room {number}"),
        attendees: Vec::new(),
        online: false,
        transaction_id: None,
        created,
        modified: created,
        change: 1,
    };
    let from = today - Duration::days(14);
    let mut events = vec![event(
        "Lunch and learn",
        at(from, 12, 0),
        at(from, 13, 0),
        Some(Recurrence {
            pattern: Pattern::Weekly,
            interval: 1,
            days: vec![
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
            ],
            start_date: from,
            end: RangeEnd::NoEnd,
        }),
    )];
    if number == 1 {
        let day = next_weekday(today, 0);
        events.push(event("Workshop", at(day, 9, 0), at(day, 10, 30), None));
    }
    Mailbox {
        zone_name,
        work_start: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
        work_end: NaiveTime::from_hms_opt(18, 0, 0).unwrap_or_default(),
        events,
    }
}

fn with_room<T>(
    state: &SimState,
    tenant: &crate::state::Tenant,
    number: u64,
    f: impl FnOnce(&mut Mailbox) -> T,
) -> T {
    let mut mailboxes = lock(&state.calendars.mailboxes);
    let mailbox = mailboxes
        .entry((tenant.index, ROOM_INDEX_BASE + number))
        .or_insert_with(|| seed_room(&state.calendars, number));
    f(mailbox)
}

fn with_mailbox<T>(state: &SimState, caller: &Caller<'_>, f: impl FnOnce(&mut Mailbox) -> T) -> T {
    let mut mailboxes = lock(&state.calendars.mailboxes);
    let mailbox = mailboxes
        .entry((caller.tenant.index, caller.owner.index))
        .or_insert_with(|| seed_mailbox(&state.calendars, &caller.owner));
    f(mailbox)
}

/// The zone answers are given in: `Prefer: outlook.timezone="…"`, else UTC.
fn preferred_zone(state: &SimState, headers: &HeaderMap) -> Result<(Tz, String), Response> {
    let Some(prefer) = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix("outlook.timezone="))
    else {
        return Ok((Tz::UTC, "UTC".to_string()));
    };
    let name = prefer.trim_matches('"');
    zone_named(name)
        .map(|tz| (tz, name.to_string()))
        .ok_or_else(|| unsupported_zone(state, headers, name))
}

fn unsupported_zone(state: &SimState, headers: &HeaderMap, name: &str) -> Response {
    graph_error(
        state,
        headers,
        StatusCode::BAD_REQUEST,
        "TimeZoneNotSupportedException",
        &format!(
            "A valid TimeZone value must be specified. The following TimeZone value is not supported: '{name}'."
        ),
    )
}

fn bad_request(state: &SimState, headers: &HeaderMap, code: &str, message: &str) -> Response {
    graph_error(state, headers, StatusCode::BAD_REQUEST, code, message)
}

/// An ISO 8601 instant from a query: with an offset as given, without one as UTC.
fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| parse_local(text).map(|n| Utc.from_utc_datetime(&n)))
}

fn parse_local(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(text.trim_end_matches('Z'), "%Y-%m-%dT%H:%M"))
        .ok()
}

/// A `dateTimeTimeZone` from a request body, as (wall-clock time, zone, zone name).
fn parse_graph_time(
    state: &SimState,
    headers: &HeaderMap,
    value: &Value,
    field: &str,
) -> Result<(NaiveDateTime, Tz, String), Response> {
    let text = value["dateTime"].as_str().unwrap_or_default();
    let Some(local) = parse_local(text) else {
        return Err(bad_request(
            state,
            headers,
            "ErrorInvalidRequest",
            &format!(
                "Cannot convert the literal '{text}' to the expected type 'Edm.DateTimeOffset' of '{field}.dateTime'."
            ),
        ));
    };
    let name = value["timeZone"].as_str().unwrap_or("UTC");
    let zone = zone_named(name).ok_or_else(|| unsupported_zone(state, headers, name))?;
    Ok((local, zone, name.to_string()))
}

/// GET `/me` and `/users/{id}` with a delegated token: the signed-in user.
pub(crate) async fn me(State(state): State<Arc<SimState>>, headers: HeaderMap) -> Response {
    let caller = match caller_any(&state, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let u = &caller.owner;
    let body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#users/$entity", state.base_url),
        "id": u.id.to_string(), "displayName": u.display_name, "userPrincipalName": u.upn,
        "mail": u.mail, "givenName": u.given_name, "surname": u.surname, "jobTitle": u.job_title,
        "officeLocation": u.office_location, "mobilePhone": u.mobile_phone,
        "businessPhones": u.business_phones, "preferredLanguage": "en-GB",
    });
    graph_ok(&state, &headers, body.to_string())
}

/// `/me` needs only a delegated token (User.Read, or anything the user consented).
fn caller_any<'a>(state: &'a SimState, headers: &HeaderMap) -> Result<Caller<'a>, Response> {
    state.count(|s| s.graph_requests += 1);
    let token = crate::identity::verify(&state.signing_key, crate::api::bearer_of(headers))
        .map_err(|_| {
            graph_error(
                state,
                headers,
                StatusCode::UNAUTHORIZED,
                "InvalidAuthenticationToken",
                "Access token validation failure.",
            )
        })?;
    let tenant = state.tenant(&token.tenant_id).ok_or_else(|| {
        graph_error(
            state,
            headers,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token validation failure.",
        )
    })?;
    let owner = token
        .user_id
        .as_deref()
        .and_then(|id| crate::delegated::find_user(tenant, id))
        .ok_or_else(|| {
            bad_request(
                state,
                headers,
                "BadRequest",
                "/me request is only valid with delegated authentication flow.",
            )
        })?;
    Ok(Caller {
        tenant,
        app_id: token.app_id,
        owner,
    })
}

fn days_json(days: &[Weekday]) -> Vec<&'static str> {
    days.iter()
        .map(|d| match d {
            Weekday::Mon => "monday",
            Weekday::Tue => "tuesday",
            Weekday::Wed => "wednesday",
            Weekday::Thu => "thursday",
            Weekday::Fri => "friday",
            Weekday::Sat => "saturday",
            Weekday::Sun => "sunday",
        })
        .collect()
}

fn working_hours_json(mailbox: &Mailbox) -> Value {
    json!({
        "daysOfWeek": days_json(&[Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri]),
        "startTime": format!("{}.0000000", mailbox.work_start.format("%H:%M:%S")),
        "endTime": format!("{}.0000000", mailbox.work_end.format("%H:%M:%S")),
        "timeZone": { "name": mailbox.zone_name },
    })
}

async fn settings(state: Arc<SimState>, headers: HeaderMap, target: Option<String>) -> Response {
    let caller = match caller(&state, &headers, target.as_deref(), Need::Settings) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let _in_flight = match admit(&state, &headers, &caller).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let body = with_mailbox(&state, &caller, |m| {
        json!({
            "@odata.context": format!("{}/v1.0/$metadata#users('{}')/mailboxSettings", state.base_url, caller.owner.id),
            "archiveFolder": "",
            "timeZone": m.zone_name,
            "automaticRepliesSetting": { "status": "disabled", "externalAudience": "all" },
            "dateFormat": "dd/MM/yyyy", "timeFormat": "HH:mm",
            "delegateMeetingMessageDeliveryOptions": "sendToDelegateOnly",
            "language": { "locale": "en-GB", "displayName": "English (United Kingdom)" },
            "workingHours": working_hours_json(m),
            "userPurpose": "user",
        })
    });
    graph_ok(&state, &headers, body.to_string())
}

pub(crate) async fn my_settings(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
) -> Response {
    settings(state, headers, None).await
}

pub(crate) async fn user_settings(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    settings(state, headers, Some(id)).await
}

/// The longest window a calendar view may span here.
const MAX_VIEW_DAYS: i64 = 5 * 366;
const DEFAULT_PAGE: usize = 10;
const MAX_PAGE: usize = 1000;

async fn calendar_view(
    state: Arc<SimState>,
    headers: HeaderMap,
    target: Option<String>,
    raw_query: Option<String>,
    path: &str,
) -> Response {
    let caller = match caller(&state, &headers, target.as_deref(), Need::Read) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let _in_flight = match admit(&state, &headers, &caller).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let pairs = query_pairs(raw_query.as_deref());
    let window = (
        param(&pairs, "startDateTime").and_then(parse_instant),
        param(&pairs, "endDateTime").and_then(parse_instant),
    );
    let (Some(from), Some(to)) = window else {
        return bad_request(
            &state,
            &headers,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters StartDateTime and EndDateTime.",
        );
    };
    if to <= from || (to - from).num_days() > MAX_VIEW_DAYS {
        return bad_request(
            &state,
            &headers,
            "ErrorInvalidParameter",
            "The value of the EndDateTime parameter must be later than StartDateTime and the window at most five years.",
        );
    }
    let (zone, label) = match preferred_zone(&state, &headers) {
        Ok(z) => z,
        Err(r) => return r,
    };
    let top = match param(&pairs, "$top").map(str::parse::<usize>) {
        None => DEFAULT_PAGE,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            return bad_request(
                &state,
                &headers,
                "ErrorInvalidParameter",
                "The value of $top must be a whole number from 1 to 1000.",
            );
        }
    };
    let skip = param(&pairs, "$skip")
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    let values: Vec<Value> = with_mailbox(&state, &caller, |m| {
        instances(&m.events, from, to)
            .iter()
            .map(|i| event_json(i, &caller.owner, zone, &label, &state.base_url))
            .collect()
    });
    let total = values.len();
    let page: Vec<Value> = values.into_iter().skip(skip).take(top).collect();
    let mut body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#Collection(event)", state.base_url),
        "value": page,
    });
    if skip + top < total {
        let mut url = match url::Url::parse(&format!("{}/v1.0/{path}", state.base_url)) {
            Ok(u) => u,
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        };
        url.query_pairs_mut()
            .append_pair(
                "startDateTime",
                param(&pairs, "startDateTime").unwrap_or_default(),
            )
            .append_pair(
                "endDateTime",
                param(&pairs, "endDateTime").unwrap_or_default(),
            )
            .append_pair("$top", &top.to_string())
            .append_pair("$skip", &(skip + top).to_string());
        body["@odata.nextLink"] = json!(url.as_str());
    }
    graph_ok(&state, &headers, body.to_string())
}

pub(crate) async fn my_calendar_view(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    calendar_view(state, headers, None, query, "me/calendarView").await
}

pub(crate) async fn user_calendar_view(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let path = format!("users/{id}/calendarView");
    calendar_view(state, headers, Some(id), query, &path).await
}

const STATUS_CODES: &[(&str, char)] = &[
    ("free", '0'),
    ("tentative", '1'),
    ("busy", '2'),
    ("oof", '3'),
    ("workingElsewhere", '4'),
];

async fn get_schedule(
    state: Arc<SimState>,
    headers: HeaderMap,
    target: Option<String>,
    body: Bytes,
) -> Response {
    let caller = match caller(&state, &headers, target.as_deref(), Need::FreeBusy) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let _in_flight = match admit(&state, &headers, &caller).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return bad_request(
            &state,
            &headers,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        );
    };
    let Some(schedules) = request["schedules"].as_array().filter(|s| !s.is_empty()) else {
        return bad_request(
            &state,
            &headers,
            "ErrorInvalidParameter",
            "The parameter 'schedules' is required and must list at least one address.",
        );
    };
    if schedules.len() > 100 {
        return bad_request(
            &state,
            &headers,
            "ErrorInvalidParameter",
            "At most 100 schedules can be asked for at once.",
        );
    }
    let window = (
        parse_graph_time(&state, &headers, &request["startTime"], "startTime"),
        parse_graph_time(&state, &headers, &request["endTime"], "endTime"),
    );
    let ((start, start_zone, _), (end, end_zone, _)) = match window {
        (Ok(s), Ok(e)) => (s, e),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let from = to_utc(start_zone, start);
    let to = to_utc(end_zone, end);
    if to <= from || (to - from).num_days() > 62 {
        return bad_request(
            &state,
            &headers,
            "ErrorInvalidTimeInterval",
            "The time window must end after it starts and span at most 62 days.",
        );
    }
    let interval = request["availabilityViewInterval"].as_i64().unwrap_or(30);
    if !(5..=1440).contains(&interval) {
        return bad_request(
            &state,
            &headers,
            "ErrorInvalidParameter",
            "availabilityViewInterval must be from 5 to 1440 minutes.",
        );
    }
    let (zone, label) = match preferred_zone(&state, &headers) {
        Ok(z) => z,
        Err(r) => return r,
    };
    let mut value = Vec::new();
    for schedule in schedules {
        let address = schedule.as_str().unwrap_or_default();
        let entry_of = |m: &mut Mailbox| {
            let found = instances(&m.events, from, to);
            let items: Vec<Value> = found
                .iter()
                .filter(|i| i.event.show_as != "free")
                .map(|i| {
                    json!({
                        "isPrivate": false, "status": i.event.show_as, "subject": i.event.subject,
                        "location": i.event.location, "isMeeting": !i.event.attendees.is_empty(),
                        "isRecurring": i.event.recurrence.is_some(), "isException": false, "isReminderSet": true,
                        "start": graph_time(i.start, zone, &label), "end": graph_time(i.end, zone, &label),
                    })
                })
                .collect();
            let slots = ((to - from).num_minutes() + interval - 1) / interval;
            let view: String = (0..slots)
                .map(|k| {
                    let a = from + Duration::minutes(k * interval);
                    let b = a + Duration::minutes(interval);
                    found
                        .iter()
                        .filter(|i| i.start < b && i.end > a)
                        .filter_map(|i| {
                            STATUS_CODES
                                .iter()
                                .find(|(s, _)| *s == i.event.show_as)
                                .map(|(_, c)| *c)
                        })
                        .max_by_key(|c| match c {
                            '3' => 4,
                            '2' => 3,
                            '1' => 2,
                            '4' => 1,
                            _ => 0,
                        })
                        .unwrap_or('0')
                })
                .collect();
            json!({
                "scheduleId": address,
                "availabilityView": view,
                "scheduleItems": items,
                "workingHours": working_hours_json(m),
            })
        };
        if let Some(number) = room_number(caller.tenant, address) {
            value.push(with_room(&state, caller.tenant, number, entry_of));
            continue;
        }
        let Some(person) =
            crate::delegated::find_user(caller.tenant, address).filter(|u| u.has_mailbox)
        else {
            value.push(json!({
                "scheduleId": address,
                "error": { "message": format!("The user '{address}' couldn't be found."), "responseCode": "ErrorMailRecipientNotFound" },
            }));
            continue;
        };
        let other = Caller {
            tenant: caller.tenant,
            app_id: caller.app_id.clone(),
            owner: person,
        };
        let entry = with_mailbox(&state, &other, entry_of);
        value.push(entry);
    }
    let body = json!({
        "@odata.context": format!("{}/v1.0/$metadata#Collection(microsoft.graph.scheduleInformation)", state.base_url),
        "value": value,
    });
    graph_ok(&state, &headers, body.to_string())
}

pub(crate) async fn my_schedule(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    get_schedule(state, headers, None, body).await
}

pub(crate) async fn user_schedule(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    get_schedule(state, headers, Some(id), body).await
}

fn attendees_from(
    state: &SimState,
    headers: &HeaderMap,
    value: &Value,
) -> Result<Vec<Value>, Response> {
    let Some(list) = value.as_array() else {
        return Ok(Vec::new());
    };
    list.iter()
        .map(|a| {
            let address = a["emailAddress"]["address"].as_str().unwrap_or_default();
            if !address.contains('@') || address.starts_with('@') || address.ends_with('@') {
                return Err(bad_request(
                    state,
                    headers,
                    "ErrorInvalidRecipients",
                    &format!("At least one recipient isn't valid: '{address}'."),
                ));
            }
            Ok(json!({
                "type": a["type"].as_str().unwrap_or("required"),
                "status": { "response": "none", "time": "0001-01-01T00:00:00Z" },
                "emailAddress": { "name": a["emailAddress"]["name"].as_str().unwrap_or(address), "address": address },
            }))
        })
        .collect()
}

const SHOW_AS: &[&str] = &[
    "free",
    "tentative",
    "busy",
    "oof",
    "workingElsewhere",
    "unknown",
];

/// Applies the fields of a create or update body to `event`.
fn apply_fields(
    state: &SimState,
    headers: &HeaderMap,
    body: &Value,
    event: &mut SimEvent,
) -> Result<(), Response> {
    if let Some(subject) = body.get("subject") {
        event.subject = subject.as_str().unwrap_or_default().to_string();
    }
    if !body["start"].is_null() {
        let (local, zone, name) = parse_graph_time(state, headers, &body["start"], "start")?;
        let length = event.end - event.start;
        event.start = local;
        event.end = local + length;
        event.zone = zone;
        event.zone_name = name;
    }
    if !body["end"].is_null() {
        let (local, zone, _) = parse_graph_time(state, headers, &body["end"], "end")?;
        // The end may be given in another zone than the start: kept in the start's.
        event.end = to_utc(zone, local).with_timezone(&event.zone).naive_local();
    }
    if to_utc(event.zone, event.end) <= to_utc(event.zone, event.start) {
        return Err(bad_request(
            state,
            headers,
            "ErrorInvalidRequest",
            "The end of the event must be after its start.",
        ));
    }
    if let Some(location) = body.get("location") {
        event.location = location["displayName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
    }
    if let Some(attendees) = body.get("attendees") {
        event.attendees = attendees_from(state, headers, attendees)?;
    }
    if let Some(online) = body.get("isOnlineMeeting") {
        event.online = online.as_bool().unwrap_or(false);
    }
    if let Some(show_as) = body.get("showAs").and_then(Value::as_str) {
        if !SHOW_AS.contains(&show_as) {
            return Err(bad_request(
                state,
                headers,
                "RequestBodyRead",
                &format!("The value '{show_as}' is not valid for showAs."),
            ));
        }
        event.show_as = show_as.to_string();
    }
    if !body["recurrence"].is_null() {
        return Err(bad_request(
            state,
            headers,
            "ErrorInvalidRequest",
            "Recurring events cannot be made through this simulator.",
        ));
    }
    Ok(())
}

async fn create_event(
    state: Arc<SimState>,
    headers: HeaderMap,
    target: Option<String>,
    body: Bytes,
) -> Response {
    let caller = match caller(&state, &headers, target.as_deref(), Need::Write) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let _in_flight = match admit(&state, &headers, &caller).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad_request(
            &state,
            &headers,
            "BadRequest",
            "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.",
        );
    };
    if body["start"].is_null() || body["end"].is_null() {
        return bad_request(
            &state,
            &headers,
            "ErrorInvalidRequest",
            "An event needs both a start and an end.",
        );
    }
    let (zone, label) = match preferred_zone(&state, &headers) {
        Ok(z) => z,
        Err(r) => return r,
    };
    let transaction = body["transactionId"].as_str().map(str::to_string);
    let now = Utc::now();
    let result = with_mailbox(&state, &caller, |m| {
        if let Some(t) = &transaction
            && let Some(existing) = m
                .events
                .iter()
                .find(|e| e.transaction_id.as_deref() == Some(t.as_str()))
        {
            // A retried create with the same transactionId gets the event already made.
            return Ok(existing.clone());
        }
        let mut event = SimEvent {
            id: state.calendars.new_id(),
            subject: String::new(),
            start: now.naive_utc(),
            end: now.naive_utc() + Duration::minutes(30),
            zone: Tz::UTC,
            zone_name: "UTC".into(),
            show_as: "busy".into(),
            recurrence: None,
            location: String::new(),
            attendees: Vec::new(),
            online: false,
            transaction_id: transaction.clone(),
            created: now,
            modified: now,
            change: 1,
        };
        apply_fields(&state, &headers, &body, &mut event)?;
        m.events.push(event.clone());
        state.calendars.created.fetch_add(1, Ordering::SeqCst);
        Ok(event)
    });
    match result {
        Ok(event) => {
            let instance = Instance {
                start: to_utc(event.zone, event.start),
                end: to_utc(event.zone, event.end),
                event: &event,
                occurrence: None,
            };
            let json = event_json(&instance, &caller.owner, zone, &label, &state.base_url);
            let mut response = graph_ok(&state, &headers, json.to_string());
            *response.status_mut() = StatusCode::CREATED;
            response
        }
        Err(r) => r,
    }
}

pub(crate) async fn my_create(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create_event(state, headers, None, body).await
}

pub(crate) async fn user_create(
    State(state): State<Arc<SimState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    create_event(state, headers, Some(id), body).await
}

fn not_found(state: &SimState, headers: &HeaderMap) -> Response {
    graph_error(
        state,
        headers,
        StatusCode::NOT_FOUND,
        "ErrorItemNotFound",
        "The specified object was not found in the store.",
    )
}

#[derive(Clone, Copy)]
enum Change {
    Get,
    Update,
    Delete,
    Cancel,
}

async fn one_event(
    state: Arc<SimState>,
    headers: HeaderMap,
    target: Option<String>,
    event_id: String,
    change: Change,
    body: Bytes,
) -> Response {
    let need = if matches!(change, Change::Get) {
        Need::Read
    } else {
        Need::Write
    };
    let caller = match caller(&state, &headers, target.as_deref(), need) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let _in_flight = match admit(&state, &headers, &caller).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    let (zone, label) = match preferred_zone(&state, &headers) {
        Ok(z) => z,
        Err(r) => return r,
    };
    let parsed = if matches!(change, Change::Update | Change::Cancel) && !body.is_empty() {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => v,
            Err(_) => {
                return bad_request(
                    &state,
                    &headers,
                    "BadRequest",
                    "Unable to read JSON request payload.",
                );
            }
        }
    } else {
        Value::Null
    };
    with_mailbox(&state, &caller, |m| {
        let Some(position) = m.events.iter().position(|e| e.id == event_id) else {
            return not_found(&state, &headers);
        };
        match change {
            Change::Get => {}
            Change::Update => {
                let mut event = m.events[position].clone();
                if event.recurrence.is_some() {
                    return bad_request(
                        &state,
                        &headers,
                        "ErrorInvalidRequest",
                        "A series cannot be changed through this simulator.",
                    );
                }
                if let Err(r) = apply_fields(&state, &headers, &parsed, &mut event) {
                    return r;
                }
                event.modified = Utc::now();
                event.change += 1;
                m.events[position] = event;
            }
            Change::Delete => {
                m.events.remove(position);
                let mut response = StatusCode::NO_CONTENT.into_response();
                response.headers_mut().insert(
                    "request-id",
                    HeaderValue::from_str(&state.request_id())
                        .unwrap_or(HeaderValue::from_static("0")),
                );
                return response;
            }
            Change::Cancel => {
                if parsed["comment"].as_str().is_some_and(|c| c.len() > 4_000) {
                    return bad_request(
                        &state,
                        &headers,
                        "ErrorInvalidRequest",
                        "The cancellation comment is too long.",
                    );
                }
                m.events.remove(position);
                return StatusCode::ACCEPTED.into_response();
            }
        }
        let event = &m.events[position];
        let instance = Instance {
            start: to_utc(event.zone, event.start),
            end: to_utc(event.zone, event.end),
            event,
            occurrence: None,
        };
        let json = event_json(&instance, &caller.owner, zone, &label, &state.base_url);
        graph_ok(&state, &headers, json.to_string())
    })
}

pub(crate) async fn my_event_get(
    State(state): State<Arc<SimState>>,
    Path(event): Path<String>,
    headers: HeaderMap,
) -> Response {
    one_event(state, headers, None, event, Change::Get, Bytes::new()).await
}

pub(crate) async fn my_event_patch(
    State(state): State<Arc<SimState>>,
    Path(event): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    one_event(state, headers, None, event, Change::Update, body).await
}

pub(crate) async fn my_event_delete(
    State(state): State<Arc<SimState>>,
    Path(event): Path<String>,
    headers: HeaderMap,
) -> Response {
    one_event(state, headers, None, event, Change::Delete, Bytes::new()).await
}

pub(crate) async fn my_event_cancel(
    State(state): State<Arc<SimState>>,
    Path(event): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    one_event(state, headers, None, event, Change::Cancel, body).await
}

pub(crate) async fn user_event_get(
    State(state): State<Arc<SimState>>,
    Path((id, event)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    one_event(state, headers, Some(id), event, Change::Get, Bytes::new()).await
}

pub(crate) async fn user_event_patch(
    State(state): State<Arc<SimState>>,
    Path((id, event)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    one_event(state, headers, Some(id), event, Change::Update, body).await
}

pub(crate) async fn user_event_delete(
    State(state): State<Arc<SimState>>,
    Path((id, event)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    one_event(
        state,
        headers,
        Some(id),
        event,
        Change::Delete,
        Bytes::new(),
    )
    .await
}

pub(crate) async fn user_event_cancel(
    State(state): State<Arc<SimState>>,
    Path((id, event)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    one_event(state, headers, Some(id), event, Change::Cancel, body).await
}

/// `/_sim/calendars/hold`: how long each calendar request is held, in milliseconds.
pub(crate) async fn set_hold(
    State(state): State<Arc<SimState>>,
    Json(body): Json<Value>,
) -> Response {
    state
        .calendars
        .set_hold(body["millis"].as_u64().unwrap_or(0));
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use chrono::Timelike;

    use super::*;

    #[test]
    fn a_fortnightly_series_skips_the_weeks_between() {
        let start = NaiveDate::from_ymd_opt(2026, 11, 4).unwrap(); // a Wednesday
        let r = Recurrence {
            pattern: Pattern::Weekly,
            interval: 2,
            days: vec![Weekday::Wed],
            start_date: start,
            end: RangeEnd::Numbered(3),
        };
        let dates = occurrence_dates(&r, start + Duration::days(100));
        assert_eq!(
            dates,
            vec![
                start,
                start + Duration::days(14),
                start + Duration::days(28)
            ]
        );
    }

    #[test]
    fn a_series_keeps_its_wall_clock_time_across_a_dst_change() {
        let event = SimEvent {
            id: "x".into(),
            subject: "s".into(),
            start: at(NaiveDate::from_ymd_opt(2026, 10, 19).unwrap(), 9, 30),
            end: at(NaiveDate::from_ymd_opt(2026, 10, 19).unwrap(), 9, 45),
            zone: chrono_tz::Europe::London,
            zone_name: "GMT Standard Time".into(),
            show_as: "busy".into(),
            recurrence: Some(Recurrence {
                pattern: Pattern::Daily,
                interval: 7,
                days: vec![],
                start_date: NaiveDate::from_ymd_opt(2026, 10, 19).unwrap(),
                end: RangeEnd::NoEnd,
            }),
            location: String::new(),
            attendees: vec![],
            online: false,
            transaction_id: None,
            created: Utc::now(),
            modified: Utc::now(),
            change: 1,
        };
        let events = [event];
        let from = Utc.with_ymd_and_hms(2026, 10, 18, 0, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2026, 11, 3, 0, 0, 0).unwrap();
        let found = instances(&events, from, to);
        let hours: Vec<u32> = found.iter().map(|i| i.start.hour()).collect();
        // 09:30 BST is 08:30 UTC; after the clocks go back on 25 October, 09:30 GMT is 09:30 UTC.
        assert_eq!(hours, vec![8, 9, 9]);
    }
}
