//! The Prometheus text format (0.0.4) for scrapers that do not read OpenMetrics, shared by the
//! worker's and the operator's `/metrics` (both encode OpenMetrics with `prometheus-client`).

/// What `/metrics` answers a scraper whose `Accept` header is `accept`: OpenMetrics to one that
/// asks for it (Prometheus does), the Prometheus text format 0.0.4 to any other. Returns the
/// content type and the body.
pub fn negotiate(accept: Option<&str>, openmetrics: String) -> (&'static str, String) {
    if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
        (
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            openmetrics,
        )
    } else {
        (
            "text/plain; version=0.0.4; charset=utf-8",
            prometheus_text(&openmetrics),
        )
    }
}

/// The Prometheus text format (0.0.4) of an OpenMetrics exposition, for scrapers that do not ask
/// for OpenMetrics (`promtool check metrics`, `curl`, older agents): in OpenMetrics a counter's
/// family is named without `_total` while its samples carry it, which a 0.0.4 reader takes for a
/// family without samples and samples without help. So counters' `# HELP`/`# TYPE` take the
/// samples' `_total` name, `_created` samples, `# UNIT` lines, exemplars and `# EOF` go,
/// `unknown` becomes `untyped`, and `info` and `stateset` families become gauges.
pub fn prometheus_text(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    // HELP comes before TYPE, and its name depends on the type: held until the TYPE line.
    let mut help: Option<(&str, &str)> = None;
    let mut family: (&str, &str) = ("", "");
    let flush_help = |out: &mut String, help: &mut Option<(&str, &str)>| {
        if let Some((name, text)) = help.take() {
            out.push_str(&format!("# HELP {name} {text}\n"));
        }
    };
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            flush_help(&mut out, &mut help);
            help = Some(rest.split_once(' ').unwrap_or((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            family = (name, kind);
            let (shown, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "stateset" => (name.to_string(), "gauge"),
                "unknown" => (name.to_string(), "untyped"),
                "gaugehistogram" => (name.to_string(), "histogram"),
                other => (name.to_string(), other),
            };
            if let Some((h, text)) = help.take() {
                let h = if h == name { shown.as_str() } else { h };
                out.push_str(&format!("# HELP {h} {text}\n"));
            }
            out.push_str(&format!("# TYPE {shown} {kind}\n"));
            continue;
        }
        flush_help(&mut out, &mut help);
        if line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let sample = line.split(['{', ' ']).next().unwrap_or_default();
        if matches!(
            family.1,
            "counter" | "histogram" | "summary" | "gaugehistogram"
        ) && sample.strip_suffix("_created") == Some(family.0)
        {
            continue;
        }
        // An exemplar (` # {…} value`) has no place in 0.0.4. It follows the value, so it is
        // looked for only after the labels (whose values may hold anything).
        let after_labels = if line.as_bytes().get(sample.len()) == Some(&b'{') {
            labels_end(line, sample.len()).unwrap_or(line.len())
        } else {
            sample.len()
        };
        let line = match line[after_labels..].find(" # {") {
            Some(at) => &line[..after_labels + at],
            None => line,
        };
        out.push_str(line);
        out.push('\n');
    }
    flush_help(&mut out, &mut help);
    out
}

/// The index just past the `}` closing the label set that opens at `open`, skipping quoted
/// values (which may hold `}` and escaped quotes).
fn labels_end(line: &str, open: usize) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices().skip_while(|(i, _)| *i <= open) {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '"') => quoted = false,
            (false, _, '"') => quoted = true,
            (false, _, '}') => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// The metric families of an exposition in the Prometheus text format, for `docs/metrics.md`:
/// name, type, label names (from its first sample) and help.
pub fn catalogue(prometheus: &str) -> Vec<(String, String, Vec<String>, String)> {
    let mut out: Vec<(String, String, Vec<String>, String)> = Vec::new();
    let mut help = String::new();
    for line in prometheus.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = rest.split_once(' ').map_or("", |(_, h)| h).to_string();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            out.push((
                name.into(),
                kind.into(),
                Vec::new(),
                std::mem::take(&mut help),
            ));
        } else if !line.starts_with('#')
            && let Some(last) = out.last_mut()
            && last.2.is_empty()
            && let Some((_, labels)) = line.split_once('{')
        {
            let labels = labels.split_once('}').map_or("", |(l, _)| l);
            last.2 = labels
                .split(',')
                .filter_map(|kv| kv.split_once('=').map(|(k, _)| k.to_string()))
                .collect();
        }
    }
    out
}

/// An extra column of [`markdown_table`]: its title, and its text for a family's name.
pub type Column<'a> = (&'a str, fn(&str) -> &str);

/// A Markdown table of the families of a Prometheus text exposition, sorted by name, for
/// `docs/metrics.md`; `group`, when given, adds a column naming where each family comes from.
pub fn markdown_table(prometheus: &str, group: Option<Column<'_>>) -> String {
    let extra = group.map_or(String::new(), |(title, _)| format!(" {title} |"));
    let mut out = format!(
        "| Metric | Type | Labels |{extra} Meaning |\n|---|---|---|{}---|\n",
        if group.is_some() { "---|" } else { "" }
    );
    let mut rows = catalogue(prometheus);
    rows.sort();
    for (name, kind, labels, help) in rows {
        let extra = group.map_or(String::new(), |(_, g)| format!(" {} |", g(&name)));
        out.push_str(&format!(
            "| `{name}` | {kind} | {} |{extra} {} |\n",
            labels.join(", "),
            help.replace('|', "\\|")
        ));
    }
    out
}

/// Replaces the text between `<!-- {marker}:begin -->` and `<!-- {marker}:end -->` in `doc`.
pub fn splice_generated(doc: &str, marker: &str, body: &str) -> Option<String> {
    let begin = format!("<!-- {marker}:begin -->\n");
    let end = format!("<!-- {marker}:end -->");
    let from = doc.find(&begin)? + begin.len();
    let to = doc[from..].find(&end)? + from;
    Some(format!("{}{body}{}", &doc[..from], &doc[to..]))
}

/// The generated section `marker` of the file at `path` (see [`splice_generated`]) against
/// `body`: `Err` naming `what` when it is stale; with `TRIBUTARY_REGENERATE` set (as
/// `make generate` does) it is rewritten instead. For the tests that keep `docs/metrics.md` true.
pub fn check_generated(
    path: &std::path::Path,
    marker: &str,
    body: &str,
    what: &str,
) -> Result<(), String> {
    let doc = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let fresh = splice_generated(&doc, marker, body)
        .ok_or_else(|| format!("{} has no {marker} markers", path.display()))?;
    if std::env::var_os("TRIBUTARY_REGENERATE").is_some() {
        return std::fs::write(path, &fresh).map_err(|e| format!("{}: {e}", path.display()));
    }
    if doc == fresh {
        Ok(())
    } else {
        Err(format!(
            "{} no longer lists what {what} exports: run `make generate`",
            path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_counters_read_as_prometheus_text_counters() {
        let om = "# HELP tributary_x Records written.\n# TYPE tributary_x counter\ntributary_x_total{connector=\"a\"} 5\ntributary_x_created{connector=\"a\"} 1.7e9\n# HELP g A gauge.\n# TYPE g gauge\n# UNIT g bytes\ng 1\n# TYPE u unknown\nu 2 # {trace=\"x\"} 1\n# EOF\n";
        assert_eq!(
            prometheus_text(om),
            "# HELP tributary_x_total Records written.\n# TYPE tributary_x_total counter\ntributary_x_total{connector=\"a\"} 5\n# HELP g A gauge.\n# TYPE g gauge\ng 1\n# TYPE u untyped\nu 2\n"
        );
    }

    #[test]
    fn a_label_value_that_looks_like_an_exemplar_is_kept() {
        let om = "# TYPE g gauge\ng{connector=\"a # {b}\",task=\"0\"} 1 # {trace=\"x\"} 1\ng{connector=\"q\\\"}\"} 2\n# EOF\n";
        assert_eq!(
            prometheus_text(om),
            "# TYPE g gauge\ng{connector=\"a # {b}\",task=\"0\"} 1\ng{connector=\"q\\\"}\"} 2\n"
        );
    }
}
