//! What the server-rendered front ends share — the admin console, the clerk inbox and
//! the citizens' portal: secret tokens, cookies, sessions and CSRF checks, password
//! hashing, security headers with each front end's CSP, HTML answers, templates
//! rendered in a layout, German time, and the whole sign-in shell of the hub's two
//! UIs (`signin`). The login limit is [`crate::LoginLimiter`]; the German wait of a
//! refused login is [`crate::limiter::wait_in_minutes`].

pub mod answer;
pub mod choice;
pub mod cookie;
pub mod german;
pub mod password;
pub mod session;
pub mod signin;
pub mod templates;
pub mod token;

pub use crate::limiter::wait_in_minutes;
pub use answer::{SecurityHeaders, asset, extract, html, plain_error, retry_after, see_other};
pub use choice::Choice;
pub use cookie::{Cookies, SameSite, cookie, secure_url};
pub use german::{
    berlin, berlin_midnight, counted, german_day, german_day_iso, german_time, german_time_rfc3339,
    german_time_seconds, german_time_unix, iso,
};
pub use session::{CsrfForm, SESSION_TTL, Session, Sessions, csrf_matches, form_value};
pub use signin::{Frame, Shell, ShellSpec, SignInUi, SignedIn, Verdict};
pub use templates::{TemplateSet, Templates};
pub use token::{is_token, random_hex, same_token, token_id};
