//! Where a REST request that must run on the leader or on a connector's owner goes
//! (connect-compat.md §5, Java's `HerderRequestHandler`): handled here, forwarded once or twice
//! with `forward=true` then `forward=false`, or refused with 409 when the group is moving.

/// Java's 409 messages.
pub const CONFLICT: &str =
    "Cannot complete request because of a conflicting operation (e.g. worker rebalance)";
pub const NO_LEADER: &str = "Cannot complete request momentarily due to no known leader URL, likely because a rebalance was underway.";

/// What to do with a request this worker received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This worker is the one to handle it.
    Local,
    /// Re-issue it at this URL (the original path and query plus `forward=`), copying only the
    /// `Authorization` header, and return the reply as received.
    Forward(String),
    /// 409 with this message.
    Conflict(&'static str),
}

/// Decides the route. `here` is whether this worker is the target (the leader, or the owner of
/// the connector or task); `target_url` the target's advertised URL when known; `forward` the
/// request's `forward` query parameter (`None` on a user's first hop).
pub fn route(
    here: bool,
    target_url: Option<&str>,
    forward: Option<bool>,
    path: &str,
    query: &[(String, String)],
) -> Route {
    if here {
        return Route::Local;
    }
    let Some(base) = target_url else {
        return Route::Conflict(NO_LEADER);
    };
    let next = match forward {
        None => true,
        Some(true) => false,
        // The second hop did not reach the target either: the group is moving.
        Some(false) => return Route::Conflict(CONFLICT),
    };
    Route::Forward(forward_url(base, path, query, next))
}

/// `<base><path>?<query without forward>&forward=<next>`, percent-encoding the query values.
pub fn forward_url(base: &str, path: &str, query: &[(String, String)], next: bool) -> String {
    let mut url = format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    let mut params: Vec<String> = query
        .iter()
        .filter(|(k, _)| k != "forward")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    params.push(format!("forward={next}"));
    url.push('?');
    url.push_str(&params.join("&"));
    url
}

fn encode(s: &str) -> String {
    tributary_connect_client::encode_component(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn first_hop_forwards_with_true_second_with_false_third_conflicts() {
        let leader = Some("http://w2:8083/");
        assert_eq!(route(true, leader, None, "/connectors", &[]), Route::Local);
        assert_eq!(
            route(false, leader, None, "/connectors", &[]),
            Route::Forward("http://w2:8083/connectors?forward=true".into())
        );
        assert_eq!(
            route(
                false,
                leader,
                Some(true),
                "/connectors/c/restart",
                &q(&[("includeTasks", "true"), ("forward", "true")])
            ),
            Route::Forward(
                "http://w2:8083/connectors/c/restart?includeTasks=true&forward=false".into()
            )
        );
        assert_eq!(
            route(false, leader, Some(false), "/connectors", &[]),
            Route::Conflict(CONFLICT)
        );
        assert_eq!(
            route(false, None, None, "/connectors", &[]),
            Route::Conflict(NO_LEADER)
        );
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(
            forward_url(
                "http://w:8083",
                "connectors",
                &q(&[("expand", "status info")]),
                true
            ),
            "http://w:8083/connectors?expand=status%20info&forward=true"
        );
    }
}
