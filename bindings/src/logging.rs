//! The bindings' `tracing` subscriber: core log lines go to logcat (via `android_logger`) on
//! Android, to the unified log (via `oslog`) on iOS, and to stderr elsewhere. The level can be
//! changed at run time with [`set_log_level`].

use std::fmt::Write as _;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Registry, reload};

/// How much the core logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LogLevel {
    /// Nothing.
    Off,
    /// Failures only.
    Error,
    /// Failures and suspicious events.
    Warn,
    /// Lifecycle events (the default).
    Info,
    /// Protocol details, for bug reports.
    Debug,
    /// Everything.
    Trace,
}

impl From<LogLevel> for LevelFilter {
    fn from(l: LogLevel) -> Self {
        match l {
            LogLevel::Off => LevelFilter::OFF,
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Trace => LevelFilter::TRACE,
        }
    }
}

type LevelHandle = reload::Handle<Targets, Registry>;

/// Our crates log at `level`; dependencies (webrtc-rs logs routine ICE and DTLS events at info)
/// only their errors.
fn targets(level: LogLevel) -> Targets {
    let level = LevelFilter::from(level);
    Targets::new()
        .with_target("peerns_core", level)
        .with_target("peerns_ffi", level)
        .with_default(level.min(LevelFilter::ERROR))
}

/// `None` if another subscriber was already installed by the host program.
static HANDLE: OnceLock<Option<LevelHandle>> = OnceLock::new();

/// Installs the platform subscriber once (at `level` if this call installs it).
pub(crate) fn init(level: LogLevel) {
    HANDLE.get_or_init(|| {
        let (filter, handle) = reload::Layer::new(targets(level));
        tracing_subscriber::registry()
            .with(filter)
            .with(PlatformLayer)
            .try_init()
            .ok()
            .map(|()| handle)
    });
}

/// Sets how much the core logs from now on (installs the logger if needed).
#[uniffi::export]
pub fn set_log_level(level: LogLevel) {
    init(level);
    if let Some(Some(handle)) = HANDLE.get()
        && handle.reload(targets(level)).is_err()
    {
        eprintln!("peerns: could not change the log level");
    }
}

/// Formats each event as one line and hands it to the platform's log.
struct PlatformLayer;

impl<S: Subscriber> Layer<S> for PlatformLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut line = LineVisitor::default();
        event.record(&mut line);
        let meta = event.metadata();
        write_line(*meta.level(), meta.target(), &line.finish());
    }
}

/// Builds "message key=value key=value".
#[derive(Default)]
struct LineVisitor {
    message: String,
    fields: String,
}

impl LineVisitor {
    fn finish(self) -> String {
        let mut line = self.message;
        line.push_str(&self.fields);
        line
    }
}

impl Visit for LineVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

#[cfg(target_os = "android")]
fn write_line(level: Level, target: &str, line: &str) {
    static LOGGER: std::sync::Once = std::sync::Once::new();
    LOGGER.call_once(|| {
        android_logger::init_once(
            android_logger::Config::default()
                .with_max_level(log::LevelFilter::Trace)
                .with_tag("peerns"),
        );
    });
    let level = match level {
        Level::ERROR => log::Level::Error,
        Level::WARN => log::Level::Warn,
        Level::INFO => log::Level::Info,
        Level::DEBUG => log::Level::Debug,
        Level::TRACE => log::Level::Trace,
    };
    log::log!(level, "{target}: {line}");
}

#[cfg(target_os = "ios")]
fn write_line(level: Level, target: &str, line: &str) {
    static LOG: OnceLock<oslog::OsLog> = OnceLock::new();
    let log = LOG.get_or_init(|| oslog::OsLog::new("org.peerns.core", "core"));
    let level = match level {
        Level::ERROR => oslog::Level::Error,
        Level::WARN => oslog::Level::Default,
        Level::INFO => oslog::Level::Info,
        Level::DEBUG | Level::TRACE => oslog::Level::Debug,
    };
    log.with_level(level, &format!("{target}: {line}"));
}

#[cfg(not(any(target_os = "android", target_os = "ios")))]
fn write_line(level: Level, target: &str, line: &str) {
    eprintln!("peerns {level:>5} {target}: {line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_message_and_fields() {
        #[derive(Default, Clone)]
        struct Capture(std::sync::Arc<std::sync::Mutex<Vec<String>>>);
        impl<S: Subscriber> Layer<S> for Capture {
            fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
                let mut line = LineVisitor::default();
                event.record(&mut line);
                self.0.lock().unwrap().push(line.finish());
            }
        }
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(peer = "p1", n = 3, "connected");
        });
        assert_eq!(*capture.0.lock().unwrap(), ["connected peer=p1 n=3"]);
    }

    #[test]
    fn level_mapping() {
        assert_eq!(LevelFilter::from(LogLevel::Off), LevelFilter::OFF);
        assert_eq!(LevelFilter::from(LogLevel::Debug), LevelFilter::DEBUG);
    }
}
