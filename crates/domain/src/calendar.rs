//! Calendar rules: which events make a person busy, Windows time-zone names as IANA zones,
//! working hours, and the free slots of a given length inside them.
//!
//! Outlook names time zones the Windows way ("GMT Standard Time"); the table here follows the
//! Unicode CLDR mapping of each Windows zone to its primary IANA zone. Times are kept as UTC
//! instants; working hours are wall-clock times in the mailbox's zone, so a working day moves
//! with daylight saving as it does for the person.

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc,
    Weekday,
};
/// Time zones as the calendar rules name them, for the crates that show and read local times.
pub use chrono_tz::Tz;
use serde::Serialize;

use crate::InputError;

/// Each Windows time zone Outlook may name, with the IANA zone CLDR maps it to.
const WINDOWS_TO_IANA: &[(&str, &str)] = &[
    ("Dateline Standard Time", "Etc/GMT+12"),
    ("UTC-11", "Etc/GMT+11"),
    ("Aleutian Standard Time", "America/Adak"),
    ("Hawaiian Standard Time", "Pacific/Honolulu"),
    ("Marquesas Standard Time", "Pacific/Marquesas"),
    ("Alaskan Standard Time", "America/Anchorage"),
    ("UTC-09", "Etc/GMT+9"),
    ("Pacific Standard Time (Mexico)", "America/Tijuana"),
    ("UTC-08", "Etc/GMT+8"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("US Mountain Standard Time", "America/Phoenix"),
    ("Mountain Standard Time (Mexico)", "America/Mazatlan"),
    ("Mountain Standard Time", "America/Denver"),
    ("Yukon Standard Time", "America/Whitehorse"),
    ("Central America Standard Time", "America/Guatemala"),
    ("Central Standard Time", "America/Chicago"),
    ("Easter Island Standard Time", "Pacific/Easter"),
    ("Central Standard Time (Mexico)", "America/Mexico_City"),
    ("Canada Central Standard Time", "America/Regina"),
    ("SA Pacific Standard Time", "America/Bogota"),
    ("Eastern Standard Time (Mexico)", "America/Cancun"),
    ("Eastern Standard Time", "America/New_York"),
    ("Haiti Standard Time", "America/Port-au-Prince"),
    ("Cuba Standard Time", "America/Havana"),
    ("US Eastern Standard Time", "America/Indiana/Indianapolis"),
    ("Turks And Caicos Standard Time", "America/Grand_Turk"),
    ("Paraguay Standard Time", "America/Asuncion"),
    ("Atlantic Standard Time", "America/Halifax"),
    ("Venezuela Standard Time", "America/Caracas"),
    ("Central Brazilian Standard Time", "America/Cuiaba"),
    ("SA Western Standard Time", "America/La_Paz"),
    ("Pacific SA Standard Time", "America/Santiago"),
    ("Newfoundland Standard Time", "America/St_Johns"),
    ("Tocantins Standard Time", "America/Araguaina"),
    ("E. South America Standard Time", "America/Sao_Paulo"),
    ("SA Eastern Standard Time", "America/Cayenne"),
    ("Argentina Standard Time", "America/Argentina/Buenos_Aires"),
    ("Greenland Standard Time", "America/Nuuk"),
    ("Montevideo Standard Time", "America/Montevideo"),
    ("Magallanes Standard Time", "America/Punta_Arenas"),
    ("Saint Pierre Standard Time", "America/Miquelon"),
    ("Bahia Standard Time", "America/Bahia"),
    ("UTC-02", "Etc/GMT+2"),
    ("Mid-Atlantic Standard Time", "Etc/GMT+2"),
    ("Azores Standard Time", "Atlantic/Azores"),
    ("Cape Verde Standard Time", "Atlantic/Cape_Verde"),
    ("UTC", "Etc/UTC"),
    ("Coordinated Universal Time", "Etc/UTC"),
    ("GMT Standard Time", "Europe/London"),
    ("Greenwich Standard Time", "Atlantic/Reykjavik"),
    ("Sao Tome Standard Time", "Africa/Sao_Tome"),
    ("Morocco Standard Time", "Africa/Casablanca"),
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Romance Standard Time", "Europe/Paris"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("W. Central Africa Standard Time", "Africa/Lagos"),
    ("Jordan Standard Time", "Asia/Amman"),
    ("GTB Standard Time", "Europe/Bucharest"),
    ("Middle East Standard Time", "Asia/Beirut"),
    ("Egypt Standard Time", "Africa/Cairo"),
    ("E. Europe Standard Time", "Europe/Chisinau"),
    ("Syria Standard Time", "Asia/Damascus"),
    ("West Bank Standard Time", "Asia/Hebron"),
    ("South Africa Standard Time", "Africa/Johannesburg"),
    ("FLE Standard Time", "Europe/Kyiv"),
    ("Israel Standard Time", "Asia/Jerusalem"),
    ("South Sudan Standard Time", "Africa/Juba"),
    ("Kaliningrad Standard Time", "Europe/Kaliningrad"),
    ("Sudan Standard Time", "Africa/Khartoum"),
    ("Libya Standard Time", "Africa/Tripoli"),
    ("Namibia Standard Time", "Africa/Windhoek"),
    ("Arabic Standard Time", "Asia/Baghdad"),
    ("Turkey Standard Time", "Europe/Istanbul"),
    ("Arab Standard Time", "Asia/Riyadh"),
    ("Belarus Standard Time", "Europe/Minsk"),
    ("Russian Standard Time", "Europe/Moscow"),
    ("E. Africa Standard Time", "Africa/Nairobi"),
    ("Volgograd Standard Time", "Europe/Volgograd"),
    ("Iran Standard Time", "Asia/Tehran"),
    ("Arabian Standard Time", "Asia/Dubai"),
    ("Astrakhan Standard Time", "Europe/Astrakhan"),
    ("Azerbaijan Standard Time", "Asia/Baku"),
    ("Russia Time Zone 3", "Europe/Samara"),
    ("Mauritius Standard Time", "Indian/Mauritius"),
    ("Saratov Standard Time", "Europe/Saratov"),
    ("Georgian Standard Time", "Asia/Tbilisi"),
    ("Caucasus Standard Time", "Asia/Yerevan"),
    ("Afghanistan Standard Time", "Asia/Kabul"),
    ("West Asia Standard Time", "Asia/Tashkent"),
    ("Qyzylorda Standard Time", "Asia/Qyzylorda"),
    ("Ekaterinburg Standard Time", "Asia/Yekaterinburg"),
    ("Pakistan Standard Time", "Asia/Karachi"),
    ("India Standard Time", "Asia/Kolkata"),
    ("Sri Lanka Standard Time", "Asia/Colombo"),
    ("Nepal Standard Time", "Asia/Kathmandu"),
    ("Central Asia Standard Time", "Asia/Bishkek"),
    ("Bangladesh Standard Time", "Asia/Dhaka"),
    ("Omsk Standard Time", "Asia/Omsk"),
    ("Myanmar Standard Time", "Asia/Yangon"),
    ("SE Asia Standard Time", "Asia/Bangkok"),
    ("Altai Standard Time", "Asia/Barnaul"),
    ("W. Mongolia Standard Time", "Asia/Hovd"),
    ("North Asia Standard Time", "Asia/Krasnoyarsk"),
    ("N. Central Asia Standard Time", "Asia/Novosibirsk"),
    ("Tomsk Standard Time", "Asia/Tomsk"),
    ("China Standard Time", "Asia/Shanghai"),
    ("North Asia East Standard Time", "Asia/Irkutsk"),
    ("Singapore Standard Time", "Asia/Singapore"),
    ("W. Australia Standard Time", "Australia/Perth"),
    ("Taipei Standard Time", "Asia/Taipei"),
    ("Ulaanbaatar Standard Time", "Asia/Ulaanbaatar"),
    ("Aus Central W. Standard Time", "Australia/Eucla"),
    ("Transbaikal Standard Time", "Asia/Chita"),
    ("Tokyo Standard Time", "Asia/Tokyo"),
    ("North Korea Standard Time", "Asia/Pyongyang"),
    ("Korea Standard Time", "Asia/Seoul"),
    ("Yakutsk Standard Time", "Asia/Yakutsk"),
    ("Cen. Australia Standard Time", "Australia/Adelaide"),
    ("AUS Central Standard Time", "Australia/Darwin"),
    ("E. Australia Standard Time", "Australia/Brisbane"),
    ("AUS Eastern Standard Time", "Australia/Sydney"),
    ("West Pacific Standard Time", "Pacific/Port_Moresby"),
    ("Tasmania Standard Time", "Australia/Hobart"),
    ("Vladivostok Standard Time", "Asia/Vladivostok"),
    ("Lord Howe Standard Time", "Australia/Lord_Howe"),
    ("Bougainville Standard Time", "Pacific/Bougainville"),
    ("Russia Time Zone 10", "Asia/Srednekolymsk"),
    ("Magadan Standard Time", "Asia/Magadan"),
    ("Norfolk Standard Time", "Pacific/Norfolk"),
    ("Sakhalin Standard Time", "Asia/Sakhalin"),
    ("Central Pacific Standard Time", "Pacific/Guadalcanal"),
    ("Russia Time Zone 11", "Asia/Kamchatka"),
    ("New Zealand Standard Time", "Pacific/Auckland"),
    ("UTC+12", "Etc/GMT-12"),
    ("Fiji Standard Time", "Pacific/Fiji"),
    ("Chatham Islands Standard Time", "Pacific/Chatham"),
    ("UTC+13", "Etc/GMT-13"),
    ("Tonga Standard Time", "Pacific/Tongatapu"),
    ("Samoa Standard Time", "Pacific/Apia"),
    ("Line Islands Standard Time", "Pacific/Kiritimati"),
];

/// The IANA zone of a zone name as Outlook gives it: a Windows name, or already an IANA one.
pub fn zone_from_outlook(name: &str) -> Result<Tz, InputError> {
    let trimmed = name.trim();
    let iana = WINDOWS_TO_IANA
        .iter()
        .find(|(windows, _)| windows.eq_ignore_ascii_case(trimmed))
        .map_or(trimmed, |(_, iana)| iana);
    iana.parse::<Tz>().map_err(|_| {
        InputError::new(
            "timeZone",
            format!("'{trimmed}' is neither a Windows nor an IANA time zone m365sync knows"),
            "Set the mailbox's time zone in Outlook (Settings → Calendar), or name a zone such as Europe/London with --time-zone",
        )
    })
}

/// An event's `showAs`: what the time it takes counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ShowAs {
    Free,
    Tentative,
    Busy,
    Oof,
    WorkingElsewhere,
    Unknown,
}

impl ShowAs {
    /// Outlook's value; anything else counts as `Unknown`, and so as busy.
    pub fn parse(value: &str) -> Self {
        match value {
            "free" => Self::Free,
            "tentative" => Self::Tentative,
            "busy" => Self::Busy,
            "oof" => Self::Oof,
            "workingElsewhere" => Self::WorkingElsewhere,
            _ => Self::Unknown,
        }
    }

    /// Whether the time cannot be offered: free and working elsewhere can, the rest cannot (an
    /// unknown status is taken as busy rather than risk a double booking).
    pub fn blocks(self) -> bool {
        !matches!(self, Self::Free | Self::WorkingElsewhere)
    }
}

/// A span of time, from `start` (inclusive) to `end` (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Span {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Span {
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, InputError> {
        if end <= start {
            return Err(InputError::new(
                "end",
                format!("the end {end} is not after the start {start}"),
                "Give an end later than the start",
            ));
        }
        Ok(Self { start, end })
    }

    pub fn overlaps(&self, other: &Span) -> bool {
        self.start < other.end && other.start < self.end
    }

    pub fn length(&self) -> Duration {
        self.end - self.start
    }
}

/// One event's time, as Outlook reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusyTime {
    pub span: Span,
    pub show_as: ShowAs,
}

/// The days and hours a person works, in their own zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkingHours {
    pub days: Vec<Weekday>,
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub zone: Tz,
}

fn parse_day(day: &str) -> Result<Weekday, InputError> {
    day.parse::<Weekday>().map_err(|_| {
        InputError::new(
            "workingHours.daysOfWeek",
            format!("'{day}' is not a day of the week"),
            "Set the working days in Outlook (Settings → Calendar → Work hours)",
        )
    })
}

/// `08:30:00.0000000` as Outlook writes times of day.
fn parse_time_of_day(field: &'static str, text: &str) -> Result<NaiveTime, InputError> {
    NaiveTime::parse_from_str(text, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M"))
        .map_err(|_| {
            InputError::new(
                field,
                format!("'{text}' is not a time of day"),
                "Set the work hours in Outlook (Settings → Calendar → Work hours)",
            )
        })
}

impl WorkingHours {
    /// From Outlook's `workingHours`: day names, start and end times of day, and the zone's name.
    pub fn from_outlook(
        days: &[String],
        start: &str,
        end: &str,
        zone: &str,
    ) -> Result<Self, InputError> {
        let days = days
            .iter()
            .map(|d| parse_day(d))
            .collect::<Result<Vec<_>, _>>()?;
        let start = parse_time_of_day("workingHours.startTime", start)?;
        let end = parse_time_of_day("workingHours.endTime", end)?;
        if end <= start {
            return Err(InputError::new(
                "workingHours",
                format!("the working day ends ({end}) before it starts ({start})"),
                "Set the work hours in Outlook (Settings → Calendar → Work hours)",
            ));
        }
        Ok(Self {
            days,
            start,
            end,
            zone: zone_from_outlook(zone)?,
        })
    }

    /// The working periods that meet `window`, as UTC spans.
    pub fn periods(&self, window: &Span) -> Vec<Span> {
        let first = window.start.with_timezone(&self.zone).date_naive() - Duration::days(1);
        let last = window.end.with_timezone(&self.zone).date_naive() + Duration::days(1);
        let mut out = Vec::new();
        let mut day = first;
        while day <= last {
            if self.days.contains(&day.weekday()) {
                let start = local_instant(self.zone, day.and_time(self.start));
                let end = local_instant(self.zone, day.and_time(self.end));
                let span = Span {
                    start: start.max(window.start),
                    end: end.min(window.end),
                };
                if span.end > span.start {
                    out.push(span);
                }
            }
            day += Duration::days(1);
        }
        out
    }
}

/// The instant of a wall-clock time in `zone`: an ambiguous one (clocks going back) is its first
/// occurrence, a skipped one (clocks going forward) is taken an hour later, as calendars do.
pub fn local_instant(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    zone.from_local_datetime(&local)
        .earliest()
        .or_else(|| {
            zone.from_local_datetime(&(local + Duration::hours(1)))
                .earliest()
        })
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| Utc.from_utc_datetime(&local))
}

/// The spans of `busy` that block time, merged where they touch or overlap, in order.
pub fn blocked(busy: &[BusyTime]) -> Vec<Span> {
    let mut spans: Vec<Span> = busy
        .iter()
        .filter(|b| b.show_as.blocks())
        .map(|b| b.span)
        .collect();
    spans.sort();
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for span in spans {
        match merged.last_mut() {
            Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
            _ => merged.push(span),
        }
    }
    merged
}

/// What free slots to look for: their length, and the grid their starts sit on (every
/// `step` from the start of the working period).
#[derive(Debug, Clone, Copy)]
pub struct SlotRequest {
    pub length: Duration,
    pub step: Duration,
}

/// Parses a length such as `30m`, `1h`, `1h30m` or a bare number of minutes.
pub fn parse_minutes(field: &'static str, text: &str) -> Result<Duration, InputError> {
    let bad = || {
        InputError::new(
            field,
            format!("'{text}' is not a length of time"),
            "Give minutes (30), or hours and minutes such as 1h, 45m or 1h30m",
        )
    };
    let trimmed = text.trim().to_ascii_lowercase();
    if let Ok(minutes) = trimmed.parse::<i64>() {
        return (1..=24 * 60)
            .contains(&minutes)
            .then(|| Duration::minutes(minutes))
            .ok_or_else(bad);
    }
    let (hours, rest) = match trimmed.split_once('h') {
        Some((h, rest)) => (h.parse::<i64>().map_err(|_| bad())?, rest),
        None => (0, trimmed.as_str()),
    };
    let minutes = match rest.strip_suffix('m') {
        Some(m) => m.parse::<i64>().map_err(|_| bad())?,
        None if rest.is_empty() => 0,
        None => return Err(bad()),
    };
    let total = hours * 60 + minutes;
    if !(1..=24 * 60).contains(&total) {
        return Err(bad());
    }
    Ok(Duration::minutes(total))
}

/// The free slots of `request.length` inside `window` and the working hours, where nothing that
/// blocks time lies. Slot starts sit on a grid of `request.step` from each working period's
/// start, so that offered times are round ones.
pub fn free_slots(
    window: &Span,
    hours: &WorkingHours,
    busy: &[BusyTime],
    request: SlotRequest,
) -> Vec<Span> {
    let blocked = blocked(busy);
    let step = if request.step > Duration::zero() {
        request.step
    } else {
        request.length
    };
    let mut slots = Vec::new();
    for period in hours.periods(window) {
        // The grid starts at the working day's start, even where the window cuts into it.
        let day_start = local_instant(
            hours.zone,
            period
                .start
                .with_timezone(&hours.zone)
                .date_naive()
                .and_time(hours.start),
        );
        let mut start = day_start;
        while start < period.start {
            start += step;
        }
        while start + request.length <= period.end {
            let candidate = Span {
                start,
                end: start + request.length,
            };
            match blocked.iter().find(|b| b.overlaps(&candidate)) {
                // Jump past the blocking span, onto the grid again.
                Some(b) => {
                    while start < b.end {
                        start += step;
                    }
                }
                None => {
                    slots.push(candidate);
                    start += step;
                }
            }
        }
    }
    slots
}

/// Whether `slot` is still free: nothing that blocks time overlaps it.
pub fn is_free(slot: &Span, busy: &[BusyTime]) -> bool {
    !busy
        .iter()
        .any(|b| b.show_as.blocks() && b.span.overlaps(slot))
}

/// A day as typed (`2026-12-01`) or `today`/`tomorrow` in `zone`, as the span of that local day.
pub fn parse_day_in(text: &str, zone: Tz, now: DateTime<Utc>) -> Result<Span, InputError> {
    let today = now.with_timezone(&zone).date_naive();
    let date = match text.trim() {
        "today" => today,
        "tomorrow" => today + Duration::days(1),
        other => NaiveDate::parse_from_str(other, "%Y-%m-%d").map_err(|_| {
            InputError::new(
                "date",
                format!("'{other}' is not a date"),
                "Give a date as YYYY-MM-DD, or today or tomorrow",
            )
        })?,
    };
    let start = local_instant(zone, date.and_time(NaiveTime::MIN));
    let end = local_instant(zone, (date + Duration::days(1)).and_time(NaiveTime::MIN));
    Ok(Span { start, end })
}

/// A local time as typed (`2026-12-01T10:30`, seconds optional) in `zone`, or an instant with
/// an offset (`…Z`, `…+01:00`). A wall-clock time the zone skips (clocks going forward) does not
/// exist and is refused; one the zone passes twice (clocks going back) is refused too, naming
/// both offsets, because picking one silently could book the wrong hour.
pub fn parse_local_time(
    field: &'static str,
    text: &str,
    zone: Tz,
) -> Result<DateTime<Utc>, InputError> {
    let text = text.trim();
    // An offset written without seconds (`2027-11-07T01:30-05:00`) is what the refusal of an
    // ambiguous time suggests, so it is read as well as full RFC 3339.
    if let Ok(instant) = DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M%:z"))
    {
        return Ok(instant.with_timezone(&Utc));
    }
    let local = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M"))
        .map_err(|_| {
            InputError::new(
                field,
                format!("'{text}' is not a date and time"),
                "Give a local time as YYYY-MM-DDTHH:MM (in the mailbox's time zone), or an instant with an offset such as 2026-12-01T10:30:00Z",
            )
        })?;
    let (day, time) = (local.date(), local.time().format("%H:%M"));
    match zone.from_local_datetime(&local) {
        chrono::LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(first, second) => Err(InputError::new(
            field,
            format!(
                "{time} occurs twice on {day} in {} (clocks go back)",
                zone.name()
            ),
            format!(
                "Give the time with its offset: {}{} for the first, {}{} for the second",
                local.format("%Y-%m-%dT%H:%M"),
                first.offset().fix(),
                local.format("%Y-%m-%dT%H:%M"),
                second.offset().fix()
            ),
        )),
        chrono::LocalResult::None => Err(InputError::new(
            field,
            format!(
                "{time} does not exist on {day} in {} (clocks go forward)",
                zone.name()
            ),
            "Give a time before or after the change",
        )),
    }
}

/// The longest event m365sync books: longer ones are surely a typing mistake, and Outlook
/// refuses very long ones with an error that names no limit.
pub const MAX_EVENT_DAYS: i64 = 14;
/// The longest subject and location: what fits Outlook's views and keeps lists readable.
pub const MAX_SUBJECT_CHARS: usize = 255;
pub const MAX_LOCATION_CHARS: usize = 255;
/// The most attendees of one booking: an invitation to more is a mailing, not an appointment.
pub const MAX_ATTENDEES: usize = 100;

/// A one-line text people typed (a subject, a location): trimmed, at most `max` characters, and
/// without control characters (a newline, NUL or ESC would reach every attendee's invitation).
pub fn one_line_text(field: &'static str, text: &str, max: usize) -> Result<String, InputError> {
    let text = text.trim();
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(InputError::new(
            field,
            format!("it holds the control character U+{:04X}", u32::from(c)),
            "Write it on one line, without line breaks or control characters",
        ));
    }
    let length = text.chars().count();
    if length > max {
        return Err(InputError::new(
            field,
            format!("it is {length} characters long, more than the {max} allowed"),
            format!("Shorten it to {max} characters"),
        ));
    }
    Ok(text.to_string())
}

/// An event's subject: required, one line, at most 255 characters.
pub fn subject(text: &str) -> Result<String, InputError> {
    let subject = one_line_text("subject", text, MAX_SUBJECT_CHARS)?;
    if subject.is_empty() {
        return Err(InputError::new(
            "subject",
            "it is empty",
            "Give the event a subject, as attendees will see it",
        ));
    }
    Ok(subject)
}

/// An event's location: optional, one line, at most 255 characters.
pub fn location(text: Option<&str>) -> Result<Option<String>, InputError> {
    let location = one_line_text("location", text.unwrap_or_default(), MAX_LOCATION_CHARS)?;
    Ok(Some(location).filter(|l| !l.is_empty()))
}

/// The attendees of a booking: each a valid address, at most 100; a second mention of one
/// (in any case) and the organiser themself are dropped, since Outlook would invite them once
/// and the organiser has the event anyway.
pub fn attendees(
    field: &'static str,
    given: &[String],
    organiser: &str,
) -> Result<Vec<String>, InputError> {
    let mut kept: Vec<String> = Vec::new();
    for address in given.iter().map(|a| a.trim()).filter(|a| !a.is_empty()) {
        if address.chars().any(char::is_control) || crate::Upn::parse(address).is_err() {
            return Err(InputError::new(
                field,
                format!("'{}' is not an email address", address.escape_debug()),
                "Give addresses such as person@contoso.com, separated by commas",
            ));
        }
        if address.eq_ignore_ascii_case(organiser)
            || kept.iter().any(|k| k.eq_ignore_ascii_case(address))
        {
            continue;
        }
        kept.push(address.to_string());
    }
    if kept.len() > MAX_ATTENDEES {
        return Err(InputError::new(
            field,
            format!(
                "{} attendees are more than the {MAX_ATTENDEES} one booking may invite",
                kept.len()
            ),
            format!("Invite at most {MAX_ATTENDEES} people, or a group's address"),
        ));
    }
    Ok(kept)
}

/// A span as people read it in `zone`, with the zone's name: one day shows its date once
/// (`Tue 2026-12-01 10:00 – 10:30 (Europe/London)`), an event over several days shows both.
pub fn describe_span(span: &Span, zone: Tz) -> String {
    let (start, end) = (
        span.start.with_timezone(&zone),
        span.end.with_timezone(&zone),
    );
    let end_text = if start.date_naive() == end.date_naive() {
        end.format("%H:%M").to_string()
    } else {
        end.format("%a %Y-%m-%d %H:%M").to_string()
    };
    format!(
        "{} – {end_text} ({})",
        start.format("%a %Y-%m-%d %H:%M"),
        zone.name()
    )
}

impl WorkingHours {
    /// The working days and hours in words, with the zone: `Mon–Fri 09:00–17:00 (Europe/London)`.
    pub fn describe(&self) -> String {
        let days = self
            .days
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        format!(
            "{days} {}–{} ({})",
            self.start.format("%H:%M"),
            self.end.format("%H:%M"),
            self.zone.name()
        )
    }

    /// Whether all of `slot` lies inside one working period.
    pub fn contains(&self, slot: &Span) -> bool {
        self.periods(slot).iter().any(|p| p == slot)
    }
}

/// The part of `window` from `now` on: the past is never offered. `None` when all of it is past.
pub fn from_now(window: &Span, now: DateTime<Utc>) -> Option<Span> {
    let start = window.start.max(now);
    (start < window.end).then_some(Span {
        start,
        end: window.end,
    })
}

/// Whether `slot` may be booked (or an event moved to it) at `now`: not in the past, not longer
/// than 14 days, and inside the mailbox's working hours unless `outside_working_hours` says the
/// person means it (an evening appointment): `free` never offers such a slot, so one typed by
/// hand is more likely a mistake of a day or an hour.
pub fn check_slot(
    slot: &Span,
    hours: &WorkingHours,
    now: DateTime<Utc>,
    outside_working_hours: bool,
) -> Result<(), InputError> {
    if slot.start < now {
        return Err(InputError::new(
            "start",
            format!(
                "{} is in the past",
                slot.start
                    .with_timezone(&hours.zone)
                    .format("%a %Y-%m-%d %H:%M")
            ),
            format!(
                "Give a start after now ({} in {})",
                now.with_timezone(&hours.zone).format("%a %Y-%m-%d %H:%M"),
                hours.zone.name()
            ),
        ));
    }
    if slot.length() > Duration::days(MAX_EVENT_DAYS) {
        return Err(InputError::new(
            "end",
            format!(
                "the event would last {:.1} days, more than the {MAX_EVENT_DAYS} days m365sync books",
                slot.length().num_minutes() as f64 / (24.0 * 60.0)
            ),
            format!("Give an end at most {MAX_EVENT_DAYS} days after the start"),
        ));
    }
    if !outside_working_hours && !hours.contains(slot) {
        return Err(InputError::new(
            "start",
            format!(
                "{} is outside the mailbox's working hours, {}",
                describe_span(slot, hours.zone),
                hours.describe()
            ),
            "Choose a slot inside the working hours (every free slot offered is), or confirm that it is meant to be outside them (outside working hours)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn busy(start: DateTime<Utc>, end: DateTime<Utc>, show_as: ShowAs) -> BusyTime {
        BusyTime {
            span: Span { start, end },
            show_as,
        }
    }

    fn nine_to_five(zone: &str) -> WorkingHours {
        WorkingHours::from_outlook(
            &["monday", "tuesday", "wednesday", "thursday", "friday"].map(String::from),
            "09:00:00.0000000",
            "17:00:00.0000000",
            zone,
        )
        .unwrap()
    }

    #[test]
    fn windows_names_map_to_iana_zones_and_iana_names_pass_through() {
        assert_eq!(
            zone_from_outlook("GMT Standard Time").unwrap(),
            chrono_tz::Europe::London
        );
        assert_eq!(
            zone_from_outlook("w. europe standard time").unwrap(),
            chrono_tz::Europe::Berlin
        );
        assert_eq!(
            zone_from_outlook("Pacific Standard Time").unwrap(),
            chrono_tz::America::Los_Angeles
        );
        assert_eq!(
            zone_from_outlook("Asia/Tokyo").unwrap(),
            chrono_tz::Asia::Tokyo
        );
        let error = zone_from_outlook("Mars Standard Time").unwrap_err();
        assert!(error.problem.contains("Mars Standard Time"));
    }

    #[test]
    fn every_windows_name_in_the_table_names_a_zone_chrono_tz_knows() {
        for (windows, iana) in WINDOWS_TO_IANA {
            assert!(iana.parse::<Tz>().is_ok(), "{windows} → {iana}");
        }
    }

    #[test]
    fn free_and_working_elsewhere_do_not_block_time_and_the_rest_does() {
        assert!(!ShowAs::parse("free").blocks());
        assert!(!ShowAs::parse("workingElsewhere").blocks());
        for value in ["busy", "tentative", "oof", "unknown", "somethingNew"] {
            assert!(ShowAs::parse(value).blocks(), "{value}");
        }
    }

    #[test]
    fn slots_stay_inside_working_hours_in_the_mailbox_zone() {
        // Monday 1 June 2026, London is on BST (UTC+1): 09:00–17:00 local is 08:00–16:00 UTC.
        let hours = nine_to_five("GMT Standard Time");
        let window = Span::new(utc(2026, 6, 1, 0, 0), utc(2026, 6, 2, 0, 0)).unwrap();
        let slots = free_slots(
            &window,
            &hours,
            &[],
            SlotRequest {
                length: Duration::minutes(60),
                step: Duration::minutes(30),
            },
        );
        assert_eq!(slots.first().unwrap().start, utc(2026, 6, 1, 8, 0));
        assert_eq!(slots.last().unwrap().end, utc(2026, 6, 1, 16, 0));
        assert_eq!(slots.len(), 15);
    }

    #[test]
    fn busy_tentative_and_out_of_office_are_never_offered_and_free_time_is() {
        let hours = nine_to_five("UTC");
        let window = Span::new(utc(2026, 6, 1, 9, 0), utc(2026, 6, 1, 13, 0)).unwrap();
        let events = [
            busy(utc(2026, 6, 1, 9, 30), utc(2026, 6, 1, 9, 45), ShowAs::Busy),
            busy(
                utc(2026, 6, 1, 10, 30),
                utc(2026, 6, 1, 11, 0),
                ShowAs::Tentative,
            ),
            busy(utc(2026, 6, 1, 11, 0), utc(2026, 6, 1, 12, 0), ShowAs::Free),
            busy(
                utc(2026, 6, 1, 12, 0),
                utc(2026, 6, 1, 12, 30),
                ShowAs::WorkingElsewhere,
            ),
        ];
        let slots = free_slots(
            &window,
            &hours,
            &events,
            SlotRequest {
                length: Duration::minutes(30),
                step: Duration::minutes(30),
            },
        );
        let starts: Vec<_> = slots.iter().map(|s| s.start).collect();
        assert_eq!(
            starts,
            vec![
                utc(2026, 6, 1, 9, 0),
                utc(2026, 6, 1, 10, 0),
                utc(2026, 6, 1, 11, 0),
                utc(2026, 6, 1, 11, 30),
                utc(2026, 6, 1, 12, 0),
                utc(2026, 6, 1, 12, 30),
            ]
        );
        for slot in &slots {
            assert!(is_free(slot, &events));
        }
    }

    #[test]
    fn weekends_are_not_offered() {
        let hours = nine_to_five("UTC");
        // Saturday 6 and Sunday 7 June 2026.
        let window = Span::new(utc(2026, 6, 6, 0, 0), utc(2026, 6, 8, 0, 0)).unwrap();
        let slots = free_slots(
            &window,
            &hours,
            &[],
            SlotRequest {
                length: Duration::minutes(30),
                step: Duration::minutes(30),
            },
        );
        assert!(slots.is_empty());
    }

    #[test]
    fn a_working_day_moves_with_daylight_saving() {
        let hours = nine_to_five("Eastern Standard Time");
        // Friday 30 October 2026 is on EDT (UTC-4); Monday 2 November on EST (UTC-5).
        for (day, utc_hour) in [(30u32, 13u32), (2, 14)] {
            let month = if day == 30 { 10 } else { 11 };
            let window =
                Span::new(utc(2026, month, day, 0, 0), utc(2026, month, day, 23, 59)).unwrap();
            let periods = hours.periods(&window);
            assert_eq!(periods[0].start, utc(2026, month, day, utc_hour, 0));
        }
    }

    #[test]
    fn lengths_parse_in_minutes_and_hours() {
        assert_eq!(
            parse_minutes("length", "30").unwrap(),
            Duration::minutes(30)
        );
        assert_eq!(
            parse_minutes("length", "1h").unwrap(),
            Duration::minutes(60)
        );
        assert_eq!(
            parse_minutes("length", "1h30m").unwrap(),
            Duration::minutes(90)
        );
        assert_eq!(
            parse_minutes("length", "45m").unwrap(),
            Duration::minutes(45)
        );
        for bad in ["", "0", "h", "2 hours", "-5", "25h"] {
            assert!(parse_minutes("length", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn working_hours_that_end_before_they_start_are_refused() {
        let error =
            WorkingHours::from_outlook(&["monday".to_string()], "17:00:00", "09:00:00", "UTC")
                .unwrap_err();
        assert_eq!(error.field, "workingHours");
    }

    #[test]
    fn a_local_time_the_clocks_skip_is_refused_and_one_they_pass_twice_names_both_offsets() {
        let zone = chrono_tz::America::New_York;
        let skipped = parse_local_time("start", "2027-03-14T02:30", zone).unwrap_err();
        assert_eq!(skipped.field, "start");
        assert_eq!(
            skipped.problem,
            "02:30 does not exist on 2027-03-14 in America/New_York (clocks go forward)"
        );
        let twice = parse_local_time("start", "2027-11-07T01:30", zone).unwrap_err();
        assert!(twice.problem.contains("occurs twice"), "{}", twice.problem);
        assert!(
            twice.fix.contains("2027-11-07T01:30-04:00"),
            "{}",
            twice.fix
        );
        assert!(
            twice.fix.contains("2027-11-07T01:30-05:00"),
            "{}",
            twice.fix
        );
        // With its offset, the second 01:30 is taken as given.
        assert_eq!(
            parse_local_time("start", "2027-11-07T01:30-05:00", zone).unwrap(),
            utc(2027, 11, 7, 6, 30)
        );
        assert_eq!(
            parse_local_time("start", "2027-03-14T03:30", zone).unwrap(),
            utc(2027, 3, 14, 7, 30)
        );
    }

    #[test]
    fn past_overlong_and_out_of_hours_slots_are_refused_with_the_limit_in_words() {
        let hours = nine_to_five("Eastern Standard Time");
        // Tuesday 1 December 2026, 10:00 in New York is 15:00 UTC.
        let now = utc(2026, 12, 1, 15, 0);
        let slot = |start, end| Span::new(start, end).unwrap();
        let past = check_slot(
            &slot(utc(2026, 12, 1, 14, 0), utc(2026, 12, 1, 14, 30)),
            &hours,
            now,
            false,
        )
        .unwrap_err();
        assert!(past.problem.contains("in the past"), "{}", past.problem);
        let long = check_slot(
            &slot(utc(2026, 12, 2, 15, 0), utc(2026, 12, 17, 15, 0)),
            &hours,
            now,
            true,
        )
        .unwrap_err();
        assert_eq!(long.field, "end");
        assert!(long.problem.contains("14 days"), "{}", long.problem);
        // 03:00 on a weekday and 10:00 on Saturday 5 December are outside the working hours.
        for (start, end) in [
            (utc(2026, 12, 2, 8, 0), utc(2026, 12, 2, 8, 30)),
            (utc(2026, 12, 5, 15, 0), utc(2026, 12, 5, 15, 30)),
            (utc(2026, 12, 2, 21, 30), utc(2026, 12, 2, 22, 30)),
        ] {
            let error = check_slot(&slot(start, end), &hours, now, false).unwrap_err();
            assert!(
                error
                    .problem
                    .contains("Mon Tue Wed Thu Fri 09:00–17:00 (America/New_York)"),
                "{}",
                error.problem
            );
            assert!(check_slot(&slot(start, end), &hours, now, true).is_ok());
        }
        assert!(
            check_slot(
                &slot(utc(2026, 12, 2, 14, 0), utc(2026, 12, 2, 22, 0)),
                &hours,
                now,
                false
            )
            .is_ok(),
            "the whole working day is inside it"
        );
    }

    #[test]
    fn free_slots_are_searched_from_now_on() {
        let window = Span::new(utc(2026, 6, 1, 0, 0), utc(2026, 6, 2, 0, 0)).unwrap();
        assert_eq!(
            from_now(&window, utc(2026, 6, 1, 10, 7)).unwrap().start,
            utc(2026, 6, 1, 10, 7)
        );
        assert_eq!(from_now(&window, utc(2026, 5, 1, 0, 0)), Some(window));
        assert_eq!(from_now(&window, utc(2026, 6, 2, 0, 0)), None);
    }

    #[test]
    fn subjects_locations_and_attendees_are_limited_and_cleaned() {
        assert_eq!(
            subject("  Housing appointment ").unwrap(),
            "Housing appointment"
        );
        assert!(subject("   ").unwrap_err().problem.contains("empty"));
        for bad in ["line\nbreak", "nul\u{0}byte", "escape\u{1b}[31m"] {
            let error = subject(bad).unwrap_err();
            assert!(error.problem.contains("control character"), "{bad:?}");
        }
        let long = "x".repeat(MAX_SUBJECT_CHARS + 1);
        assert!(
            subject(&long)
                .unwrap_err()
                .problem
                .contains("256 characters")
        );
        assert!(
            subject(&"é".repeat(MAX_SUBJECT_CHARS)).is_ok(),
            "characters, not bytes"
        );
        assert_eq!(location(Some("  ")).unwrap(), None);
        assert!(location(Some(&"r".repeat(256))).is_err());

        let given: Vec<String> = ["a@x.com", "A@X.com", "officer@contoso.com", " b@y.org "]
            .map(String::from)
            .to_vec();
        assert_eq!(
            attendees("attendees", &given, "Officer@Contoso.com").unwrap(),
            ["a@x.com", "b@y.org"]
        );
        let many: Vec<String> = (0..=MAX_ATTENDEES).map(|i| format!("p{i}@x.com")).collect();
        assert!(
            attendees("attendees", &many, "o@x.com")
                .unwrap_err()
                .problem
                .contains("101 attendees")
        );
        let error = attendees("attendees", &["nobody".to_string()], "o@x.com").unwrap_err();
        assert!(error.problem.contains("nobody"));
    }

    #[test]
    fn a_span_over_several_days_shows_both_dates_in_the_zone() {
        let zone = chrono_tz::Europe::London;
        let one_day = Span::new(utc(2026, 12, 1, 10, 0), utc(2026, 12, 1, 10, 30)).unwrap();
        assert_eq!(
            describe_span(&one_day, zone),
            "Tue 2026-12-01 10:00 – 10:30 (Europe/London)"
        );
        let two_days = Span::new(utc(2026, 12, 1, 11, 0), utc(2026, 12, 2, 11, 0)).unwrap();
        assert_eq!(
            describe_span(&two_days, zone),
            "Tue 2026-12-01 11:00 – Wed 2026-12-02 11:00 (Europe/London)"
        );
    }
}
