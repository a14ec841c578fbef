//! The state of the hub as operators see it: what is in force, and what waits.

use time::OffsetDateTime;

use crate::store::Backlog;

/// What is in force now: the router's mappings, keyring and transports.
pub trait InForce: Send + Sync {
    fn mappings(&self) -> Vec<MappingStatus>;
    /// Certificates with their exact days left (fractions, NaN when unreadable).
    fn certificates(&self) -> Vec<CertificateStatus>;
    fn destinations(&self) -> Vec<Destination>;
    /// Procedures that cannot receive now, as `procedure <id>: <reason>`.
    fn problems(&self) -> Vec<String>;
}

/// Everything `status` shows, gathered at one moment.
#[derive(Debug, Clone)]
pub struct StatusReport {
    pub mappings: Vec<MappingStatus>,
    pub certificates: Vec<CertificateStatus>,
    pub procedures: Vec<ProcedureStatus>,
}

/// A loaded mapping (a service the hub offers).
#[derive(Debug, Clone)]
pub struct MappingStatus {
    /// The LeiKa key.
    pub service: String,
    pub name: String,
    pub message_type: String,
    /// Whether any route leads to it.
    pub online: bool,
}

/// A certificate in force.
#[derive(Debug, Clone)]
pub struct CertificateStatus {
    /// `hub` or the procedure id.
    pub owner: String,
    /// The file name (or `receipt` for a procedure's receipt certificate).
    pub certificate: String,
    /// Whole days until it expires, rounded down (negative: expired; NaN: unreadable).
    pub days_left: f64,
    /// Its stage, while it takes part in a staged rotation.
    pub stage: Option<crate::Stage>,
}

/// Where a configured procedure's messages go.
#[derive(Debug, Clone)]
pub struct Destination {
    pub procedure: String,
    pub transport: &'static str,
    pub destination: String,
}

/// A configured procedure, its destination and its waiting work.
#[derive(Debug, Clone)]
pub struct ProcedureStatus {
    pub procedure: String,
    pub transport: &'static str,
    pub destination: String,
    pub pending: u64,
    pub oldest_since: Option<OffsetDateTime>,
    /// Why it receives nothing now (no usable certificate), if it is blocked.
    pub blocked: Option<String>,
}

/// The report from what is in force and the backlog.
pub(super) fn report(in_force: &dyn InForce, backlog: &[Backlog]) -> StatusReport {
    let certificates = in_force
        .certificates()
        .into_iter()
        .map(|c| CertificateStatus {
            days_left: c.days_left.floor(),
            ..c
        })
        .collect();
    let problems = in_force.problems();
    let procedures = in_force
        .destinations()
        .into_iter()
        .map(|d| {
            let waiting = backlog.iter().find(|b| b.procedure == d.procedure);
            let prefix = format!("procedure {}:", d.procedure);
            ProcedureStatus {
                pending: waiting.map_or(0, |b| b.pending),
                oldest_since: waiting.and_then(|b| b.oldest_since),
                blocked: problems.iter().find(|p| p.starts_with(&prefix)).cloned(),
                procedure: d.procedure,
                transport: d.transport,
                destination: d.destination,
            }
        })
        .collect();
    StatusReport {
        mappings: in_force.mappings(),
        certificates,
        procedures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed;

    impl InForce for Fixed {
        fn mappings(&self) -> Vec<MappingStatus> {
            Vec::new()
        }
        fn certificates(&self) -> Vec<CertificateStatus> {
            vec![CertificateStatus {
                owner: "hub".into(),
                certificate: "hub.crt".into(),
                days_left: -0.25,
                stage: None,
            }]
        }
        fn destinations(&self) -> Vec<Destination> {
            ["a", "ab"]
                .map(|id| Destination {
                    procedure: id.into(),
                    transport: "http",
                    destination: format!("https://{id}.example"),
                })
                .into()
        }
        fn problems(&self) -> Vec<String> {
            vec!["procedure ab: no usable certificate: expired".into()]
        }
    }

    #[test]
    fn the_report_joins_backlog_and_blocks_by_exact_procedure() {
        let backlog = [Backlog {
            procedure: "ab".into(),
            pending: 3,
            oldest_since: None,
        }];
        let report = report(&Fixed, &backlog);
        assert_eq!(report.certificates[0].days_left, -1.0);
        let a = &report.procedures[0];
        assert_eq!((a.pending, a.blocked.as_deref()), (0, None));
        let ab = &report.procedures[1];
        assert_eq!(ab.pending, 3);
        assert!(ab.blocked.as_deref().is_some_and(|b| b.contains("expired")));
    }
}
