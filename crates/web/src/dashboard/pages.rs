//! The pages: consolidated (home), project, reconcile.

#[allow(clippy::wildcard_imports)]
use super::*;

#[derive(Deserialize, Default)]
pub(super) struct ReconcileParams {
    /// `YYYY-MM` (default: last month).
    period: Option<String>,
}

/// A month's invoices against the stored records (admin), with the month to pick.
pub(super) async fn reconcile_page(
    PageAuth(p): PageAuth,
    Query(params): Query<ReconcileParams>,
) -> Result<Response, ApiError> {
    let last_month = month_bounds(p.billing.today())
        .1
        .map(|r| r.start().format("%Y-%m").to_string())
        .unwrap_or_default();
    let period = params.period.unwrap_or(last_month);
    let r = p.billing.reconcile(&p, &period).await?;
    let mut body = format!(
        "<form class=\"range\" method=\"get\" action=\"/reconcile\">Month <input type=\"month\" name=\"period\" value=\"{}\"> <button>Show</button></form>",
        esc(&r.period)
    );
    if r.accounts.is_empty() {
        body.push_str("<p>No invoices and no records for this month. Import invoices with <code>cloudbill invoice import FILE</code>.</p>");
    } else {
        body.push_str("<table data-table=\"reconcile\"><tr><th>Account</th><th>Currency</th><th>Invoice</th><th class=\"r\">Invoice total</th><th class=\"r\">Billed</th><th class=\"r\">Difference</th><th>Status</th></tr>");
        let cell = |d: Option<Decimal>| d.map(|v| v.to_string()).unwrap_or_default();
        for a in &r.accounts {
            let class = match a.status {
                "matched" => "succeeded",
                "mismatched" => "failed",
                _ => "partial",
            };
            let _ = write!(
                body,
                "<tr data-status=\"{status}\"><td>{account}</td><td>{cur}</td><td>{inv}</td><td class=\"r\">{total}</td><td class=\"r\">{billed}</td><td class=\"r\">{diff}</td><td class=\"{class}\">{status}</td></tr>",
                status = a.status,
                account = esc(&a.account),
                cur = a.currency,
                inv = esc(a.invoice_id.as_deref().unwrap_or("")),
                total = cell(a.invoice_total),
                billed = cell(a.billed),
                diff = cell(a.difference),
            );
        }
        body.push_str("</table>");
    }
    Ok(page(&format!("Reconciliation · {}", r.period), &p, &body).into_response())
}

pub(super) async fn home(
    PageAuth(p): PageAuth,
    Query(params): Query<RangeParams>,
) -> Result<Response, ApiError> {
    if let Principal::ProjectMember { projects } = &p.principal {
        // Members have no consolidated view: send them to their project.
        return Ok(match projects.first() {
            Some(id) => Redirect::to(&format!("/projects/{id}")).into_response(),
            None => ApiError::from(cloudbill_service::ServiceError::Forbidden(
                "no project".into(),
            ))
            .into_response(),
        });
    }
    let v = view(&params, p.billing.today())?;
    let mut q = ReportQuery::new(v.range, v.granularity);
    let consolidated = p.billing.report(&p, &q).await?;
    q.group_by = vec![GroupKey::Project];
    let per_project = p.billing.report(&p, &q).await?;
    q.group_by = vec![GroupKey::ServiceAccount];
    let per_account = p.billing.report(&p, &q).await?;
    let projects = p.billing.projects(&p).await?;
    let domain = p.billing.domain().await?;
    let mut body = cards(&p, None).await?;
    body.push_str(&budget_bars(&p, None).await?);
    body.push_str(&kept_anomalies(&p).await?);
    body.push_str(&range_form(&v, "/"));
    body.push_str(&chart(&consolidated));
    body.push_str(&currency_totals(&consolidated, &v, &[]));
    body.push_str(&table(
        "Per project",
        "project",
        &per_project,
        |name| match projects.iter().find(|x| x.name.as_str() == name) {
            Some(x) => format!(
                "<a href=\"/projects/{}?start={}&end={}&granularity={}\">{}</a>",
                x.id,
                v.range.start(),
                v.range.end(),
                v.granularity,
                esc(name)
            ),
            None => esc(name),
        },
        |name| api_link(&v, &["project"], &[("project", name.to_owned())]),
    ));
    body.push_str(&table(
        "Per account",
        "service_account",
        &per_account,
        esc,
        |name| {
            api_link(
                &v,
                &["service_account"],
                &[("service_account", name.to_owned())],
            )
        },
    ));
    body.push_str(&sync_states(&p, None).await?);
    Ok(page(
        &format!("Consolidated billing · {}", domain.name),
        &p,
        &body,
    )
    .into_response())
}

pub(super) async fn project_page(
    PageAuth(p): PageAuth,
    Path(id): Path<String>,
    Query(params): Query<RangeParams>,
) -> Result<Response, ApiError> {
    let project = p.billing.project(&p, &id).await?;
    let v = view(&params, p.billing.today())?;
    let pid = project.id.to_string();
    let filters = [("project", pid.clone())];
    let mut q = ReportQuery::new(v.range, v.granularity);
    q.filters.insert(GroupKey::Project, vec![pid.clone()]);
    let total = p.billing.report(&p, &q).await?;
    q.group_by = vec![GroupKey::ServiceAccount];
    let per_account = p.billing.report(&p, &q).await?;
    q.group_by = vec![GroupKey::Service];
    let per_service = p.billing.report(&p, &q).await?;
    let mut body = cards(&p, Some(&pid)).await?;
    body.push_str(&budget_bars(&p, Some(project.id)).await?);
    body.push_str(&project_anomalies(&p, &pid).await?);
    body.push_str(&range_form(&v, &format!("/projects/{pid}")));
    let _ = write!(
        body,
        "<p><a href=\"/explore?start={}&amp;end={}&amp;group_by=service&amp;filter.project={pid}\">Explore this project</a></p>",
        v.range.start(),
        v.range.end()
    );
    body.push_str(&chart(&total));
    body.push_str(&currency_totals(&total, &v, &filters));
    body.push_str(&table(
        "Per account",
        "service_account",
        &per_account,
        esc,
        |name| {
            api_link(
                &v,
                &["service_account"],
                &[
                    ("project", pid.clone()),
                    ("service_account", name.to_owned()),
                ],
            )
        },
    ));
    body.push_str(&table(
        "Per service",
        "service",
        &per_service,
        esc,
        |name| {
            api_link(
                &v,
                &["service"],
                &[("project", pid.clone()), ("service", name.to_owned())],
            )
        },
    ));
    body.push_str(&sync_states(&p, Some(project.id)).await?);
    Ok(page(&format!("Project {}", project.name), &p, &body).into_response())
}
