//! The contract cases. Each takes a fresh harness and asserts behaviour through the trait.

use cloudbill_core::{
    parse_decimal, AccountState, ChargeCategory, Currency, GroupId, JobState, Money, ProjectGroup,
    ProjectId, ProviderKind, ProviderState, ServiceAccount, Settings,
};
use cloudbill_store::StoreError;
use std::sync::Arc;

use crate::support::*;

pub async fn new_domain_has_billing_off_and_default_providers(h: &Harness) {
    let s = &*h.store;
    let d = domain(s, "acme").await;
    assert!(!d.billing_enabled, "billing must be off for a new domain");
    let again = domain(s, "acme").await;
    assert_eq!(d.id, again.id, "ensure_domain must be idempotent");
    let providers = s.providers(d.id).await.unwrap();
    let kinds: Vec<_> = providers.iter().map(|p| (p.kind, p.state)).collect();
    assert_eq!(
        kinds,
        vec![
            (ProviderKind::HyperbillingAws, ProviderState::Enabled),
            (ProviderKind::File, ProviderState::Enabled)
        ]
    );
    let on = s.set_billing_enabled(d.id, true).await.unwrap();
    assert!(on.billing_enabled);
    assert!(domain(s, "acme").await.billing_enabled);
}

pub async fn domains_are_listed_and_disabled_one_at_a_time(h: &Harness) {
    let s = &*h.store;
    let b = domain(s, "beta").await;
    let a = domain(s, "acme").await;
    let names: Vec<String> = s
        .domains()
        .await
        .unwrap()
        .iter()
        .map(|d| d.name.to_string())
        .collect();
    assert_eq!(names, ["acme", "beta"], "domains are listed by name");
    assert_eq!(s.domain(a.id).await.unwrap().name, a.name);
    assert!(a.disabled_at.is_none(), "a new domain is enabled");
    let at = chrono::Utc::now();
    let off = s.set_domain_disabled(b.id, Some(at)).await.unwrap();
    assert!(off.disabled_at.is_some());
    assert!(
        domain(s, "beta").await.disabled_at.is_some(),
        "ensure_domain shows it"
    );
    assert!(
        s.domain(a.id).await.unwrap().disabled_at.is_none(),
        "the other is untouched"
    );
    let on = s.set_domain_disabled(b.id, None).await.unwrap();
    assert!(on.disabled_at.is_none());
    let missing = cloudbill_core::DomainId::new();
    assert!(matches!(
        s.domain(missing).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.set_domain_disabled(missing, None).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn providers_can_be_disabled_and_enabled(h: &Harness) {
    let s = &*h.store;
    let d = domain(s, "acme").await;
    s.set_provider_state(d.id, ProviderKind::HyperbillingAws, ProviderState::Disabled)
        .await
        .unwrap();
    let p = s.providers(d.id).await.unwrap();
    assert_eq!(p[0].state, ProviderState::Disabled);
    assert_eq!(p[1].state, ProviderState::Enabled);
    s.set_provider_state(d.id, ProviderKind::HyperbillingAws, ProviderState::Enabled)
        .await
        .unwrap();
    assert_eq!(
        s.providers(d.id).await.unwrap()[0].state,
        ProviderState::Enabled
    );
}

pub async fn projects_and_groups_enforce_unique_names_and_references(h: &Harness) {
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let root = ProjectGroup {
        id: GroupId::new(),
        domain: d.id,
        name: name("engineering"),
        parent: None,
        created_at: chrono::Utc::now(),
    };
    s.create_group(&root).await.unwrap();
    let child = ProjectGroup {
        id: GroupId::new(),
        name: name("platform"),
        parent: Some(root.id),
        ..root.clone()
    };
    s.create_group(&child).await.unwrap();
    let dup = ProjectGroup {
        id: GroupId::new(),
        ..root.clone()
    };
    let err = s.create_group(&dup).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "project group \"engineering\" already exists"
    );
    let orphan = ProjectGroup {
        id: GroupId::new(),
        name: name("orphan"),
        parent: Some(GroupId::new()),
        ..root.clone()
    };
    assert!(matches!(
        s.create_group(&orphan).await.unwrap_err(),
        StoreError::NotFound {
            what: "project group",
            ..
        }
    ));
    let groups = s.groups(d.id).await.unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[1].parent, Some(root.id));

    let web = project(s, d.id, "web").await;
    let mut api = web.clone();
    api.id = ProjectId::new();
    api.name = name("api");
    api.group = Some(child.id);
    s.create_project(&api).await.unwrap();
    let mut dup = web.clone();
    dup.id = ProjectId::new();
    let err = s.create_project(&dup).await.unwrap_err();
    assert_eq!(err.to_string(), "project \"web\" already exists");
    let mut bad_group = web.clone();
    bad_group.id = ProjectId::new();
    bad_group.name = name("nowhere");
    bad_group.group = Some(GroupId::new());
    assert!(matches!(
        s.create_project(&bad_group).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
    let projects = s.projects(d.id).await.unwrap();
    assert_eq!(
        projects.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["api", "web"]
    );
    assert_eq!(projects[0].group, Some(child.id));

    // A used project cannot be deleted; an unused one can.
    account(s, d.id, web.id, "aws-main").await;
    assert!(matches!(
        s.delete_project(d.id, web.id).await.unwrap_err(),
        StoreError::Conflict(_)
    ));
    s.delete_project(d.id, api.id).await.unwrap();
    assert_eq!(s.projects(d.id).await.unwrap().len(), 1);
    assert!(matches!(
        s.delete_project(d.id, api.id).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
}

pub async fn accounts_round_trip_with_credentials_and_enforce_names(h: &Harness) {
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let web = project(s, d.id, "web").await;
    let a = account(s, d.id, web.id, "aws-main").await;
    let back = s.account(d.id, a.id).await.unwrap();
    assert_eq!(back.name, a.name);
    assert_eq!(back.project, web.id);
    assert_eq!(
        back.settings, a.settings,
        "settings (and their secrets) must round-trip"
    );
    assert_eq!(back.settings.secret("key").unwrap().expose(), SECRET);
    assert_eq!(back.settings.value("email"), Some("ops@example.com"));
    assert!(
        !format!("{back:?}").contains(SECRET),
        "Debug must not show the key"
    );

    let dup = account_value(d.id, web.id, "aws-main");
    let err = s.create_account(&dup).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "service account \"aws-main\" already exists"
    );
    let unknown_project = account_value(d.id, ProjectId::new(), "aws-2");
    assert!(matches!(
        s.create_account(&unknown_project).await.unwrap_err(),
        StoreError::NotFound {
            what: "project",
            ..
        }
    ));

    let file = ServiceAccount {
        provider: ProviderKind::File,
        settings: Settings::default(),
        ..account_value(d.id, web.id, "focus-import")
    };
    s.create_account(&file).await.unwrap();
    let all = s.accounts(d.id).await.unwrap();
    assert_eq!(
        all.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["aws-main", "focus-import"]
    );
    assert!(all[1].settings.is_empty());

    s.set_account_state(d.id, a.id, AccountState::Disabled)
        .await
        .unwrap();
    assert_eq!(
        s.account(d.id, a.id).await.unwrap().state,
        AccountState::Disabled
    );
    assert!(matches!(
        s.account(d.id, cloudbill_core::AccountId::new())
            .await
            .unwrap_err(),
        StoreError::NotFound {
            what: "service account",
            ..
        }
    ));
}

pub async fn deleting_an_account_removes_its_data(h: &Harness) {
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let web = project(s, d.id, "web").await;
    let a = account(s, d.id, web.id, "a").await;
    let b = account(s, d.id, web.id, "b").await;
    let w = range("2025-01-01", "2025-01-03");
    for acc in [&a, &b] {
        let job = start_job(s, acc, w).await;
        s.replace_window(
            d.id,
            acc.id,
            job,
            w,
            &[record(acc, "2025-01-01", "1.5", "EC2")],
        )
        .await
        .unwrap();
    }
    s.delete_account(d.id, a.id).await.unwrap();
    assert!(s.account(d.id, a.id).await.is_err());
    let left = s.cost_records(d.id, w, None).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].service_account, b.id);
    assert!(s.jobs(d.id, Some(a.id), 10).await.unwrap().is_empty());
    assert_eq!(s.jobs(d.id, None, 10).await.unwrap().len(), 1);
    assert!(s.delete_account(d.id, a.id).await.is_err());
}

/// A move as the service makes it: the core rule, then the store's compare-and-set.
async fn assign(
    s: &dyn cloudbill_store::Store,
    domain: cloudbill_core::DomainId,
    account: cloudbill_core::AccountId,
    project: ProjectId,
    from: Option<cloudbill_core::NaiveDate>,
) -> Result<(), StoreError> {
    let history = s.assignments(domain, account).await?;
    let moved = ServiceAccount::moved(&history, project, from);
    s.set_assignments(domain, account, &history, &moved).await
}

pub async fn assignment_history_moves_with_and_without_a_date(h: &Harness) {
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let (p1, p2, p3) = (
        project(s, d.id, "one").await,
        project(s, d.id, "two").await,
        project(s, d.id, "three").await,
    );
    let a = account(s, d.id, p1.id, "acc").await;
    let history = s.assignments(d.id, a.id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].from, None);

    assign(s, d.id, a.id, p2.id, Some(date("2025-03-01")))
        .await
        .unwrap();
    let history = s.assignments(d.id, a.id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        ServiceAccount::project_on(&history, date("2025-02-28")),
        Some(p1.id)
    );
    assert_eq!(
        ServiceAccount::project_on(&history, date("2025-03-01")),
        Some(p2.id)
    );
    assert_eq!(s.account(d.id, a.id).await.unwrap().project, p2.id);

    // An earlier dated move supersedes later steps.
    assign(s, d.id, a.id, p3.id, Some(date("2025-02-01")))
        .await
        .unwrap();
    let history = s.assignments(d.id, a.id).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(
        ServiceAccount::project_on(&history, date("2025-03-05")),
        Some(p3.id)
    );
    assert_eq!(
        ServiceAccount::project_on(&history, date("2025-01-05")),
        Some(p1.id)
    );

    // A move without a date rewrites the whole history.
    assign(s, d.id, a.id, p2.id, None).await.unwrap();
    let history = s.assignments(d.id, a.id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        ServiceAccount::project_on(&history, date("2000-01-01")),
        Some(p2.id)
    );

    assert!(matches!(
        assign(s, d.id, a.id, ProjectId::new(), None)
            .await
            .unwrap_err(),
        StoreError::NotFound {
            what: "project",
            ..
        }
    ));

    // A move computed from a history another move replaced meanwhile is refused, not lost.
    let stale = s.assignments(d.id, a.id).await.unwrap();
    assign(s, d.id, a.id, p3.id, Some(date("2025-06-01")))
        .await
        .unwrap();
    let moved = ServiceAccount::moved(&stale, p1.id, Some(date("2025-07-01")));
    let err = s
        .set_assignments(d.id, a.id, &stale, &moved)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    // Histories that break the rules are refused whole.
    let current = s.assignments(d.id, a.id).await.unwrap();
    for bad in [
        vec![],
        vec![cloudbill_core::Assignment {
            project: p1.id,
            from: Some(date("2025-01-01")),
        }],
        vec![
            cloudbill_core::Assignment {
                project: p1.id,
                from: None,
            },
            cloudbill_core::Assignment {
                project: p2.id,
                from: None,
            },
        ],
    ] {
        assert!(s.set_assignments(d.id, a.id, &current, &bad).await.is_err());
    }
    assert_eq!(s.assignments(d.id, a.id).await.unwrap(), current);
}

pub async fn replace_window_replaces_and_audits_restatements(h: &Harness) {
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let web = project(s, d.id, "web").await;
    let a = account(s, d.id, web.id, "acc").await;
    let w = range("2025-01-01", "2025-01-04");
    let job = start_job(s, &a, w).await;
    let first = vec![
        record(&a, "2025-01-01", "1.1000000001", "EC2"),
        record(&a, "2025-01-01", "2.0000000002", "S3"),
        record(&a, "2025-01-02", "3.5", "EC2"),
        record(&a, "2025-01-03", "-0.25", "Credit"),
    ];
    let out = s.replace_window(d.id, a.id, job, w, &first).await.unwrap();
    assert_eq!(out.rows, 4);
    assert_eq!(out.changed_days.len(), 3, "every day is new");

    // Outside the window: must survive the restatement below.
    let outside = range("2025-01-10", "2025-01-11");
    let job_outside = start_job(s, &a, outside).await;
    s.replace_window(
        d.id,
        a.id,
        job_outside,
        outside,
        &[record(&a, "2025-01-10", "7", "EC2")],
    )
    .await
    .unwrap();

    // Restate day 2, drop the day-3 credit, keep day 1.
    let restated = vec![
        record(&a, "2025-01-01", "1.1000000001", "EC2"),
        record(&a, "2025-01-01", "2.0000000002", "S3"),
        record(&a, "2025-01-02", "4.0000000009", "EC2"),
    ];
    let job2 = start_job(s, &a, w).await;
    let out = s
        .replace_window(d.id, a.id, job2, w, &restated)
        .await
        .unwrap();
    assert_eq!(out.rows, 3);
    let changed: Vec<_> = out
        .changed_days
        .iter()
        .map(|c| {
            (
                c.date,
                c.old_total.normalize().to_string(),
                c.new_total.normalize().to_string(),
            )
        })
        .collect();
    assert_eq!(
        changed,
        vec![
            (
                date("2025-01-02"),
                "3.5".to_string(),
                "4.0000000009".to_string()
            ),
            (date("2025-01-03"), "-0.25".to_string(), "0".to_string()),
        ]
    );
    let t = totals(s, &a, range("2025-01-01", "2025-02-01")).await;
    assert_eq!(t.get(&date("2025-01-01")).unwrap(), "3.1000000003");
    assert_eq!(
        t.get(&date("2025-01-02")).unwrap(),
        "4.0000000009",
        "restated, not doubled"
    );
    assert!(!t.contains_key(&date("2025-01-03")), "vanished rows vanish");
    assert_eq!(t.get(&date("2025-01-10")).unwrap(), "7");

    let jobs = s.jobs(d.id, Some(a.id), 10).await.unwrap();
    let stored = jobs.iter().find(|j| j.id == job2).unwrap();
    assert_eq!(stored.rows, 3);
    assert_eq!(stored.changed_days, out.changed_days);
}

pub async fn identical_replace_is_a_no_op(h: &Harness) {
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let web = project(s, d.id, "web").await;
    let a = account(s, d.id, web.id, "acc").await;
    let w = range("2025-02-01", "2025-03-01");
    let rows: Vec<_> = (1..=28)
        .map(|day| {
            record(
                &a,
                &format!("2025-02-{day:02}"),
                &format!("{day}.0123456789"),
                "EC2",
            )
        })
        .collect();
    let job = start_job(s, &a, w).await;
    s.replace_window(d.id, a.id, job, w, &rows).await.unwrap();
    let before = totals(s, &a, w).await;
    let job2 = start_job(s, &a, w).await;
    let out = s.replace_window(d.id, a.id, job2, w, &rows).await.unwrap();
    assert!(out.changed_days.is_empty(), "{:?}", out.changed_days);
    assert_eq!(totals(s, &a, w).await, before);
    assert_eq!(s.cost_records(d.id, w, Some(a.id)).await.unwrap().len(), 28);
}

pub async fn failed_replace_mid_write_keeps_the_old_rows(h: &Harness) {
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let web = project(s, d.id, "web").await;
    let a = account(s, d.id, web.id, "acc").await;
    let w = range("2025-03-01", "2025-03-02");
    let job = start_job(s, &a, w).await;
    s.replace_window(d.id, a.id, job, w, &[record(&a, "2025-03-01", "10", "EC2")])
        .await
        .unwrap();
    // 2,500 good rows, then one outside the window: the delete and the first inserts have run
    // inside the transaction when it fails.
    let mut rows: Vec<_> = (0..2500)
        .map(|i| record(&a, "2025-03-01", &format!("0.{i:04}"), &format!("svc{i}")))
        .collect();
    rows.push(record(&a, "2025-03-05", "1", "late"));
    let job2 = start_job(s, &a, w).await;
    let err = s
        .replace_window(d.id, a.id, job2, w, &rows)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::RecordRejected(_)), "{err}");
    assert!(err.to_string().contains("outside the window"), "{err}");
    let left = s.cost_records(d.id, w, Some(a.id)).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].cost.amount().to_string(), "10");
    let j = s.jobs(d.id, Some(a.id), 10).await.unwrap();
    assert_eq!(j.iter().find(|j| j.id == job2).unwrap().rows, 0);

    // A record of another account is refused too.
    let other = account(s, d.id, web.id, "other").await;
    let err = s
        .replace_window(
            d.id,
            a.id,
            job2,
            w,
            &[record(&other, "2025-03-01", "1", "x")],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::RecordRejected(_)));
    // An unknown job is refused and rolls back.
    let err = s
        .replace_window(
            d.id,
            a.id,
            cloudbill_core::JobId::new(),
            w,
            &[record(&a, "2025-03-01", "99", "x")],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound { what: "job", .. }),
        "{err}"
    );
    assert_eq!(s.cost_records(d.id, w, Some(a.id)).await.unwrap().len(), 1);
}

pub async fn exact_decimals_round_trip(h: &Harness) {
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let web = project(s, d.id, "web").await;
    let a = account(s, d.id, web.id, "acc").await;
    let w = range("2025-04-01", "2025-04-02");
    let amounts = [
        "123.4567890123",
        "0.12345678901",
        "0.000000000012345",
        "-5.0000000001",
        "1000000000000.0000000001",
        "-999999999999.99999999999",
        "0.0",
        "1.50",
    ];
    let mut rows: Vec<_> = amounts
        .iter()
        .enumerate()
        .map(|(i, amt)| record(&a, "2025-04-01", amt, &format!("svc{i}")))
        .collect();
    let mut sci = record(&a, "2025-04-01", "0", "sci");
    sci.cost = Money::new(parse_decimal("9.6E-6").unwrap(), Currency::USD);
    sci.usage_quantity = parse_decimal("1.23456789012345E+5").unwrap();
    sci.effective_cost = Some(parse_decimal("-1.00000000001").unwrap());
    sci.list_cost = Some(parse_decimal("2.5E-11").unwrap());
    sci.charge_category = ChargeCategory::Credit;
    sci.tags.insert("team".into(), "pay\"ments".into());
    sci.instance_type = None;
    sci.region = String::new();
    rows.push(sci.clone());
    let mut eur = record(&a, "2025-04-01", "3.333", "eur");
    eur.cost = Money::new(
        parse_decimal("3.333").unwrap(),
        Currency::parse("EUR").unwrap(),
    );
    rows.push(eur);
    let job = start_job(s, &a, w).await;
    s.replace_window(d.id, a.id, job, w, &rows).await.unwrap();
    let mut back = s.cost_records(d.id, w, Some(a.id)).await.unwrap();
    back.sort_by(|x, y| x.service.cmp(&y.service));
    let mut expected = rows.clone();
    expected.sort_by(|x, y| x.service.cmp(&y.service));
    assert_eq!(back, expected, "records must round-trip exactly");
    for (b, e) in back.iter().zip(&expected) {
        // Trailing zeros are not significant (PostgreSQL returns 0.0 as 0); every other digit is.
        assert_eq!(
            b.cost.amount().normalize().to_string(),
            e.cost.amount().normalize().to_string(),
            "digits kept"
        );
    }
    let got = back.iter().find(|r| r.service == "sci").unwrap();
    assert_eq!(got.cost.amount().to_string(), "0.0000096");
    assert_eq!(got.list_cost.unwrap().to_string(), "0.000000000025");
    let sums = cloudbill_store::daily_totals(&back).unwrap();
    let usd = sums[&(date("2025-04-01"), Currency::USD)];
    assert_eq!(usd.normalize().to_string(), "120.080255401332345");
    assert_eq!(
        sums[&(date("2025-04-01"), Currency::parse("EUR").unwrap())].to_string(),
        "3.333"
    );
}

pub async fn jobs_are_listed_newest_first_and_updated(h: &Harness) {
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let web = project(s, d.id, "web").await;
    let a = account(s, d.id, web.id, "a").await;
    let b = account(s, d.id, web.id, "b").await;
    let w = range("2025-01-01", "2025-02-01");
    let mut ids = vec![];
    for acc in [&a, &b, &a] {
        ids.push(start_job(s, acc, w).await);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let all = s.jobs(d.id, None, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|j| j.id).collect::<Vec<_>>(),
        [ids[2], ids[1], ids[0]]
    );
    assert_eq!(s.jobs(d.id, None, 2).await.unwrap().len(), 2);
    let only_a = s.jobs(d.id, Some(a.id), 10).await.unwrap();
    assert_eq!(
        only_a.iter().map(|j| j.id).collect::<Vec<_>>(),
        [ids[2], ids[0]]
    );

    let mut job = all[0].clone();
    job.state = JobState::Failed;
    job.error = Some("invalid Hyperbilling credentials for account 111111111111".into());
    job.finished_at = Some(chrono::Utc::now());
    s.save_job(&job).await.unwrap();
    let back = s.jobs(d.id, Some(a.id), 1).await.unwrap().remove(0);
    assert_eq!(back.state, JobState::Failed);
    assert_eq!(back.error, job.error);
    assert!(back.finished_at.is_some());
    assert_eq!(back.window, w);
    // One job by id, in its own domain only.
    let one = s.job(d.id, job.id).await.unwrap();
    assert_eq!(
        (one.id, one.state, one.error),
        (job.id, JobState::Failed, job.error)
    );
    assert_eq!(s.job(d.id, ids[1]).await.unwrap().account, b.id);
    let other = domain(s, "other").await;
    for (dom, id) in [(other.id, job.id), (d.id, cloudbill_core::JobId::new())] {
        assert!(matches!(
            s.job(dom, id).await.unwrap_err(),
            StoreError::NotFound { .. }
        ));
    }
}

pub async fn domains_are_isolated(h: &Harness) {
    let s = &*h.store;
    let d1 = domain(s, "one").await;
    let d2 = domain(s, "two").await;
    let p1 = project(s, d1.id, "web").await;
    // Same name in another domain is fine.
    let p2 = project(s, d2.id, "web").await;
    let a1 = account(s, d1.id, p1.id, "acc").await;
    account(s, d2.id, p2.id, "acc").await;
    assert!(
        s.account(d2.id, a1.id).await.is_err(),
        "no cross-domain reads"
    );
    assert!(
        assign(s, d1.id, a1.id, p2.id, None).await.is_err(),
        "no cross-domain moves"
    );
    let w = range("2025-01-01", "2025-01-02");
    let job = start_job(s, &a1, w).await;
    s.replace_window(d1.id, a1.id, job, w, &[record(&a1, "2025-01-01", "1", "x")])
        .await
        .unwrap();
    assert!(s.cost_records(d2.id, w, None).await.unwrap().is_empty());
    assert_eq!(s.projects(d2.id).await.unwrap().len(), 1);
}

pub async fn leases_exclude_other_holders_until_they_expire(h: &Harness) {
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let web = project(s, d.id, "web").await;
    let a = account(s, d.id, web.id, "acc").await;
    let now = chrono::Utc::now();
    let later = now + chrono::Duration::minutes(5);
    assert!(s.try_lease(a.id, "proc-1", now, later).await.unwrap());
    assert!(
        !s.try_lease(a.id, "proc-2", now, later).await.unwrap(),
        "held by proc-1"
    );
    assert!(
        s.try_lease(a.id, "proc-1", now, later).await.unwrap(),
        "renewable by its holder"
    );
    // Once expired, another holder may take it.
    let after_expiry = later + chrono::Duration::seconds(1);
    assert!(s
        .try_lease(
            a.id,
            "proc-2",
            after_expiry,
            after_expiry + chrono::Duration::minutes(5)
        )
        .await
        .unwrap());
    // Releasing by a non-holder does nothing; by the holder frees it.
    s.release_lease(a.id, "proc-1").await.unwrap();
    assert!(!s
        .try_lease(a.id, "proc-3", after_expiry, later)
        .await
        .unwrap());
    s.release_lease(a.id, "proc-2").await.unwrap();
    assert!(s
        .try_lease(a.id, "proc-3", after_expiry, later)
        .await
        .unwrap());
}

pub async fn tokens_are_found_by_hash_listed_and_revoked(h: &Harness) {
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let web = project(s, d.id, "web").await;
    let admin = cloudbill_core::ApiToken {
        id: cloudbill_core::TokenId::new(),
        domain: d.id,
        role: cloudbill_core::TokenRole::Admin,
        project: None,
        label: "ops".into(),
        // Whole seconds: PostgreSQL keeps microseconds only.
        created_at: chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0),
        revoked_at: None,
    };
    let member = cloudbill_core::ApiToken {
        id: cloudbill_core::TokenId::new(),
        role: cloudbill_core::TokenRole::ProjectMember,
        project: Some(web.id),
        label: "web team".into(),
        created_at: admin.created_at + chrono::Duration::seconds(1),
        ..admin.clone()
    };
    s.create_token(&admin, &[1; 32]).await.unwrap();
    s.create_token(&member, &[2; 32]).await.unwrap();
    assert!(matches!(
        s.create_token(&member, &[2; 32]).await.unwrap_err(),
        StoreError::Conflict(_)
    ));
    assert_eq!(
        s.token_by_hash(&[2; 32]).await.unwrap(),
        Some(member.clone())
    );
    assert_eq!(s.token_by_hash(&[3; 32]).await.unwrap(), None);
    let listed = s.tokens(d.id).await.unwrap();
    assert_eq!(
        listed.iter().map(|t| t.id).collect::<Vec<_>>(),
        [member.id, admin.id]
    );
    s.revoke_token(d.id, admin.id).await.unwrap();
    s.revoke_token(d.id, admin.id).await.unwrap();
    assert!(s
        .token_by_hash(&[1; 32])
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    assert!(matches!(
        s.revoke_token(d.id, cloudbill_core::TokenId::new())
            .await
            .unwrap_err(),
        StoreError::NotFound { .. }
    ));
}

/// Per (account, day) totals read back from the columnar partitions.
async fn partition_totals(
    s: &dyn cloudbill_store::Store,
    d: cloudbill_core::DomainId,
    range: Option<cloudbill_core::DateRange>,
) -> std::collections::BTreeMap<
    (cloudbill_core::AccountId, cloudbill_core::NaiveDate),
    cloudbill_core::Decimal,
> {
    let mut out = std::collections::BTreeMap::new();
    for (account, blob) in s.cost_partitions(d, range).await.unwrap() {
        let p = cloudbill_columnar::Partition::decode(&blob).unwrap();
        for (day, _, amount) in p.daily_totals().unwrap() {
            *out.entry((account, day))
                .or_insert(cloudbill_core::Decimal::ZERO) += amount;
        }
    }
    out
}

pub async fn partitions_mirror_the_rows_and_versions_move(h: &Harness) {
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let v0 = s.data_version(d.id).await.unwrap();
    let web = project(s, d.id, "web").await;
    let a = account(s, d.id, web.id, "a").await;
    let b = account(s, d.id, web.id, "b").await;
    let v1 = s.data_version(d.id).await.unwrap();
    assert!(v1 > v0, "catalog changes move the version");
    // A window across a month boundary, then a partial re-write of March.
    let w = range("2025-02-20", "2025-03-20");
    let job = start_job(s, &a, w).await;
    let rows: Vec<_> = w
        .iter_days()
        .map(|day| record(&a, &day.to_string(), "1.0000000001", "EC2"))
        .collect();
    s.replace_window(d.id, a.id, job, w, &rows).await.unwrap();
    let wb = range("2025-03-01", "2025-04-01");
    let jb = start_job(s, &b, wb).await;
    s.replace_window(
        d.id,
        b.id,
        jb,
        wb,
        &[record(&b, "2025-03-31", "-2.5", "Credit")],
    )
    .await
    .unwrap();
    let v2 = s.data_version(d.id).await.unwrap();
    assert!(v2 > v1, "writes move the version");
    let restate = range("2025-03-10", "2025-03-12");
    let job2 = start_job(s, &a, restate).await;
    s.replace_window(
        d.id,
        a.id,
        job2,
        restate,
        &[record(&a, "2025-03-10", "7", "EC2")],
    )
    .await
    .unwrap();

    let all = range("2025-01-01", "2025-05-01");
    let from_rows: std::collections::BTreeMap<_, _> = {
        let mut m = std::collections::BTreeMap::new();
        for r in s.cost_records(d.id, all, None).await.unwrap() {
            *m.entry((r.service_account, r.date))
                .or_insert(cloudbill_core::Decimal::ZERO) += r.cost.amount();
        }
        m
    };
    assert_eq!(partition_totals(s, d.id, None).await, from_rows);
    // 28 days of a, less 2025-03-11 (its restated window now holds only 03-10), plus b's day.
    assert_eq!(from_rows.len(), 28 - 1 + 1);
    // Only months overlapping the range come back.
    let march = partition_totals(s, d.id, Some(range("2025-03-15", "2025-03-16"))).await;
    assert!(march
        .keys()
        .all(|(_, day)| day.to_string().starts_with("2025-03")));
    assert!(!march.is_empty());
    // Deleting an account drops its partitions.
    s.delete_account(d.id, b.id).await.unwrap();
    assert!(partition_totals(s, d.id, None)
        .await
        .keys()
        .all(|(acc, _)| *acc == a.id));
}

pub async fn streamed_replace_writes_chunks_in_one_transaction(h: &Harness) {
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let web = project(s, d.id, "web").await;
    let a = account(s, d.id, web.id, "a").await;
    let w = range("2025-01-01", "2025-03-01");
    let days: Vec<_> = w.iter_days().collect();
    let send = |chunks: Vec<Vec<cloudbill_core::CostRecord>>, end: bool| {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            for c in chunks {
                if tx.send(cloudbill_store::Chunk::Records(c)).await.is_err() {
                    return;
                }
            }
            if end {
                let _ = tx.send(cloudbill_store::Chunk::End).await;
            }
        });
        rx
    };
    let send_all = |chunks| send(chunks, true);
    let rows: Vec<_> = days
        .iter()
        .map(|day| record(&a, &day.to_string(), "2.0000000001", "EC2"))
        .collect();
    let job = start_job(s, &a, w).await;
    let mut rx = send_all(rows.chunks(7).map(<[_]>::to_vec).collect());
    let out = s
        .replace_window_streamed(d.id, a.id, job, Some(w), &mut rx)
        .await
        .unwrap();
    assert_eq!(out.rows, 59);
    assert_eq!(out.changed_days.len(), 59);
    assert_eq!(totals(s, &a, w).await.len(), 59);
    assert_eq!(
        partition_totals(s, d.id, None).await.len(),
        59,
        "segments hold every day"
    );
    // A bad record in a later chunk rolls everything back.
    let mut bad: Vec<_> = days
        .iter()
        .map(|day| record(&a, &day.to_string(), "9", "EC2"))
        .collect();
    bad.push(record(&a, "2025-04-01", "1", "late"));
    let job2 = start_job(s, &a, w).await;
    let mut rx = send_all(bad.chunks(10).map(<[_]>::to_vec).collect());
    let err = s
        .replace_window_streamed(d.id, a.id, job2, Some(w), &mut rx)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::RecordRejected(_)), "{err}");
    let t = totals(s, &a, w).await;
    assert!(t.values().all(|v| v == "2.0000000001"), "old rows kept");
    // A stream whose producer stopped before the end changes nothing either.
    let changed: Vec<_> = days
        .iter()
        .map(|day| record(&a, &day.to_string(), "5", "EC2"))
        .collect();
    let job_cut = start_job(s, &a, w).await;
    let mut rx = send(changed.chunks(10).map(<[_]>::to_vec).collect(), false);
    let err = s
        .replace_window_streamed(d.id, a.id, job_cut, Some(w), &mut rx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("stopped before its end"), "{err}");
    assert!(
        totals(s, &a, w).await.values().all(|v| v == "2.0000000001"),
        "old rows kept"
    );
    // Unchanged data streamed again changes nothing.
    let job3 = start_job(s, &a, w).await;
    let mut rx = send_all(rows.chunks(20).map(<[_]>::to_vec).collect());
    let out = s
        .replace_window_streamed(d.id, a.id, job3, Some(w), &mut rx)
        .await
        .unwrap();
    assert!(out.changed_days.is_empty());
}

/// One account holding 2.0000000001 on every day of January and February 2025.
async fn january_and_february_at_two(
    s: &dyn cloudbill_store::Store,
) -> (
    cloudbill_core::Domain,
    cloudbill_core::ServiceAccount,
    cloudbill_core::DateRange,
) {
    let d = domain(s, "acme").await;
    let web = project(s, d.id, "web").await;
    let a = account(s, d.id, web.id, "a").await;
    let w = range("2025-01-01", "2025-03-01");
    let rows: Vec<_> = w
        .iter_days()
        .map(|day| record(&a, &day.to_string(), "2.0000000001", "EC2"))
        .collect();
    let job = start_job(s, &a, w).await;
    s.replace_window(d.id, a.id, job, w, &rows).await.unwrap();
    (d, a, w)
}

pub async fn streamed_replace_learns_its_window(h: &Harness) {
    let s = &*h.store;
    let (d, a, w) = january_and_february_at_two(s).await;
    let send_all = |chunks: Vec<Vec<cloudbill_core::CostRecord>>| {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        tokio::spawn(async move {
            for c in chunks {
                if tx.send(cloudbill_store::Chunk::Records(c)).await.is_err() {
                    return;
                }
            }
            let _ = tx.send(cloudbill_store::Chunk::End).await;
        });
        rx
    };

    // Without a window (an import), exactly the days the records hold are replaced: 2025-01-10
    // to 2025-02-05 but for 2025-01-20, which has no record and keeps its old one (#13: a file
    // with two far-apart days used to wipe every day between them). The job shows first to
    // last day. Segments spill after every chunk here, so months end up split over several
    // segments; nothing may depend on that.
    cloudbill_store::set_spill_bytes(1);
    let span: Vec<_> = range("2025-01-10", "2025-02-06")
        .iter_days()
        .filter(|day| day.to_string() != "2025-01-20")
        .map(|day| record(&a, &day.to_string(), "3", "EC2"))
        .collect();
    let job4 = start_job(s, &a, w).await;
    let mut rx = send_all(span.chunks(3).map(<[_]>::to_vec).collect());
    let out = s
        .replace_window_streamed(d.id, a.id, job4, None, &mut rx)
        .await
        .unwrap();
    assert_eq!(out.window, Some(range("2025-01-10", "2025-02-06")));
    assert_eq!(out.rows, 26);
    assert_eq!(out.days, 26);
    let recorded = s.jobs(d.id, Some(a.id), 100).await.unwrap();
    assert_eq!(
        recorded.iter().find(|j| j.id == job4).unwrap().window,
        range("2025-01-10", "2025-02-06"),
        "the job carries the learned window, written with the data"
    );
    assert_eq!(out.changed_days.len(), 26, "26 new totals, no day emptied");
    let t = totals(s, &a, w).await;
    assert_eq!(t.len(), 59);
    assert_eq!(t[&date("2025-01-09")], "2.0000000001");
    assert_eq!(t[&date("2025-01-10")], "3");
    assert_eq!(t[&date("2025-02-05")], "3");
    assert_eq!(t[&date("2025-02-06")], "2.0000000001");
    assert_eq!(
        t[&date("2025-01-20")],
        "2.0000000001",
        "a day the file lacks is kept"
    );
    // A restatement inside the split months keeps every other day of them.
    let one = range("2025-01-15", "2025-01-16");
    let job5 = start_job(s, &a, one).await;
    let mut rx = send_all(vec![vec![record(&a, "2025-01-15", "4", "EC2")]]);
    s.replace_window_streamed(d.id, a.id, job5, Some(one), &mut rx)
        .await
        .unwrap();
    cloudbill_store::set_spill_bytes(64 << 20);
    let t2 = totals(s, &a, w).await;
    assert_eq!(t2.len(), 59);
    assert_eq!(t2[&date("2025-01-15")], "4");
    assert_eq!(
        t2.iter()
            .filter(|(k, _)| **k != date("2025-01-15"))
            .collect::<Vec<_>>(),
        t.iter()
            .filter(|(k, _)| **k != date("2025-01-15"))
            .collect::<Vec<_>>()
    );
    assert_eq!(partition_totals(s, d.id, None).await.len(), 59);

    // Two far-apart days replace those two days only; the month between is not touched.
    let job7 = start_job(s, &a, w).await;
    let mut rx = send_all(vec![vec![
        record(&a, "2025-01-02", "5", "EC2"),
        record(&a, "2025-02-27", "5", "EC2"),
    ]]);
    let out = s
        .replace_window_streamed(d.id, a.id, job7, None, &mut rx)
        .await
        .unwrap();
    assert_eq!((out.days, out.changed_days.len()), (2, 2));
    let t3 = totals(s, &a, w).await;
    assert_eq!(t3.len(), 59);
    assert_eq!(t3[&date("2025-01-02")], "5");
    assert_eq!(t3[&date("2025-02-27")], "5");
    assert_eq!(t3[&date("2025-01-03")], t2[&date("2025-01-03")]);
    assert_eq!(t3[&date("2025-02-26")], t2[&date("2025-02-26")]);
    let t2 = t3;

    // No window and no record: nothing happens.
    let job6 = start_job(s, &a, w).await;
    let mut rx = send_all(vec![]);
    let out = s
        .replace_window_streamed(d.id, a.id, job6, None, &mut rx)
        .await
        .unwrap();
    assert_eq!(out.window, None);
    assert_eq!(totals(s, &a, w).await, t2);
}

pub async fn streamed_replace_takes_ready_encoded_partitions(h: &Harness) {
    let s = &*h.store;
    let (d, a, w) = january_and_february_at_two(s).await;
    // Ready-encoded partitions (what an import sends): checked, stored as segments, and
    // read back like records; one with a day outside the window, or damaged, is refused
    // and rolls everything back.
    let feb: Vec<_> = range("2025-02-10", "2025-02-13")
        .iter_days()
        .map(|day| record(&a, &day.to_string(), "0.0000000007", "S3"))
        .collect();
    let refs: Vec<&cloudbill_core::CostRecord> = feb.iter().collect();
    let blob = cloudbill_columnar::encode_partition(date("2025-02-01"), &refs);
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    tx.send(cloudbill_store::Chunk::Partition(blob.clone()))
        .await
        .unwrap();
    tx.send(cloudbill_store::Chunk::End).await.unwrap();
    let job7 = start_job(s, &a, w).await;
    let out = s
        .replace_window_streamed(d.id, a.id, job7, None, &mut rx)
        .await
        .unwrap();
    assert_eq!(out.rows, 3);
    assert_eq!(out.window, Some(range("2025-02-10", "2025-02-13")));
    let t3 = totals(s, &a, w).await;
    assert_eq!(t3[&date("2025-02-11")], "0.0000000007");
    assert_eq!(t3[&date("2025-02-13")], "2.0000000001");
    assert_eq!(t3.len(), 59);
    let back = s
        .cost_records(d.id, range("2025-02-11", "2025-02-12"), Some(a.id))
        .await
        .unwrap();
    assert_eq!(back, vec![feb[1].clone()]);
    // Damaged bytes never become a partition to send.
    let mut damaged = blob.clone().into_bytes();
    let last = damaged.len() - 1;
    damaged[last] ^= 0xff;
    damaged.truncate(last - 3);
    assert!(cloudbill_columnar::EncodedPartition::from_bytes(damaged).is_err());
    for (bad, window) in [(blob.clone(), Some(range("2025-02-10", "2025-02-12")))] {
        let (tx, mut rx) = tokio::sync::mpsc::channel(4);
        tx.send(cloudbill_store::Chunk::Records(vec![record(
            &a,
            "2025-02-10",
            "99",
            "EC2",
        )]))
        .await
        .unwrap();
        tx.send(cloudbill_store::Chunk::Partition(bad))
            .await
            .unwrap();
        tx.send(cloudbill_store::Chunk::End).await.unwrap();
        let job = start_job(s, &a, w).await;
        let err = s
            .replace_window_streamed(d.id, a.id, job, window, &mut rx)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::RecordRejected(_)), "{err}");
        assert_eq!(totals(s, &a, w).await, t3, "nothing written");
    }
}

pub async fn concurrent_replaces_of_one_account_run_one_after_the_other(h: &Harness) {
    let s = &*h.store;
    let (d, a, w) = january_and_february_at_two(s).await;
    let (tx1, mut rx1) = tokio::sync::mpsc::channel(64);
    let (tx2, mut rx2) = tokio::sync::mpsc::channel(64);
    let (job1, job2) = (start_job(s, &a, w).await, start_job(s, &a, w).await);
    let batch = |cost: &str| -> Vec<cloudbill_core::CostRecord> {
        w.iter_days()
            .map(|day| record(&a, &day.to_string(), cost, "EC2"))
            .collect()
    };
    let (ones, twos) = (batch("1"), batch("2"));
    let feed = async move {
        // Both transactions are open before either stream ends.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        for (tx, rows) in [(tx1, ones), (tx2, twos)] {
            for chunk in rows.chunks(10) {
                tx.send(cloudbill_store::Chunk::Records(chunk.to_vec()))
                    .await
                    .unwrap();
            }
            tx.send(cloudbill_store::Chunk::End).await.unwrap();
        }
    };
    let (first, second, ()) = tokio::join!(
        s.replace_window_streamed(d.id, a.id, job1, Some(w), &mut rx1),
        s.replace_window_streamed(d.id, a.id, job2, Some(w), &mut rx2),
        feed
    );
    first.unwrap();
    second.unwrap();
    let t = totals(s, &a, w).await;
    assert_eq!(t.len(), 59);
    let values: std::collections::BTreeSet<&String> = t.values().collect();
    assert_eq!(
        values.len(),
        1,
        "one replace's data, never a mix: {values:?}"
    );
    assert_eq!(
        s.cost_records(d.id, w, Some(a.id)).await.unwrap().len(),
        59,
        "nothing doubled"
    );
}

/// A budget event for `budget` at `at`.
fn budget_event(
    d: cloudbill_core::DomainId,
    budget: &cloudbill_core::Budget,
    kind: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> cloudbill_core::Event {
    cloudbill_core::Event {
        id: cloudbill_core::EventId::new(),
        domain: d,
        kind: kind.into(),
        subject: budget.id.as_uuid(),
        subject_name: budget.name.to_string(),
        occurred_at: at,
        cause: "test".into(),
        payload: format!("{{\"type\":\"{kind}\"}}"),
    }
}

#[allow(clippy::too_many_lines)] // One story: channel, budget, crossing, delivery, clearing.
pub async fn budgets_channels_and_the_outbox(h: &Harness) {
    use cloudbill_core::{
        Budget, BudgetId, BudgetScope, Channel, ChannelId, ChannelKind, ClientSecret, CostMetric,
        DeliveryState, Name, Notification, Period, Threshold,
    };
    use cloudbill_store::{DeliveryOutcome, Transition};
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let other = domain(s, "other").await;
    let web = project(s, d.id, "web").await;
    let at = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0);
    let hook = Channel {
        id: ChannelId::new(),
        domain: d.id,
        name: Name::parse("ops-hook", "channel name").unwrap(),
        kind: ChannelKind::Webhook,
        target: "https://example.com/hook".into(),
        smtp: None,
        created_at: at,
    };
    let secret = ClientSecret::new("whsec-never-shown").unwrap();
    s.create_channel(&hook, Some(&secret)).await.unwrap();
    assert!(matches!(
        s.create_channel(
            &Channel {
                id: ChannelId::new(),
                ..hook.clone()
            },
            None
        )
        .await
        .unwrap_err(),
        StoreError::Conflict(_)
    ));
    assert_eq!(s.channels(d.id).await.unwrap(), std::slice::from_ref(&hook));
    assert!(s.channels(other.id).await.unwrap().is_empty());
    assert_eq!(
        s.channel_secret(d.id, hook.id)
            .await
            .unwrap()
            .unwrap()
            .expose(),
        "whsec-never-shown"
    );
    assert!(s.channel_secret(other.id, hook.id).await.is_err());

    let budget = Budget {
        id: BudgetId::new(),
        domain: d.id,
        name: Name::parse("web-monthly", "budget name").unwrap(),
        scope: BudgetScope::Project(web.id),
        filters: vec![("service".into(), "AmazonEC2".into())],
        period: Period::Monthly,
        amount: Money::new(
            parse_decimal("1000.00").unwrap(),
            Currency::parse("USD").unwrap(),
        ),
        metric: CostMetric::Billed,
        notifications: vec![Notification {
            threshold: Threshold::parse("actual:80%").unwrap(),
            channels: vec![hook.id],
        }],
        created_at: at,
    };
    s.create_budget(&budget).await.unwrap();
    assert!(matches!(
        s.create_budget(&Budget {
            id: BudgetId::new(),
            ..budget.clone()
        })
        .await
        .unwrap_err(),
        StoreError::Conflict(_)
    ));
    assert_eq!(
        s.budgets(d.id).await.unwrap(),
        std::slice::from_ref(&budget)
    );

    // A crossing is recorded once, however often it is proposed; its delivery is queued with it.
    let month = chrono::NaiveDate::from_ymd_opt(2025, 5, 1).unwrap();
    let fire = |kind: &str| Transition {
        budget: budget.id,
        notification: 0,
        period_start: month,
        fire: kind.ends_with("crossed"),
        event: budget_event(d.id, &budget, kind, at),
        channels: vec![hook.id],
    };
    let first = fire("budget.threshold_crossed");
    assert_eq!(
        s.record_transitions(d.id, std::slice::from_ref(&first))
            .await
            .unwrap(),
        [first.event.id]
    );
    assert!(s
        .record_transitions(d.id, &[fire("budget.threshold_crossed")])
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .record_transitions(other.id, &[fire("budget.threshold_crossed")])
        .await
        .unwrap()
        .is_empty());
    let fired = s.fired_thresholds(d.id).await.unwrap();
    assert_eq!((fired.len(), fired[0].period_start), (1, month));
    assert_eq!(
        s.events(d.id, Some(budget.id.as_uuid()), 10).await.unwrap(),
        std::slice::from_ref(&first.event)
    );

    // Claimed once; a second claimer finds nothing until the claim runs out.
    let later = at + chrono::Duration::seconds(30);
    let claimed = s.claim_deliveries(d.id, at, later, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].event, first.event);
    assert_eq!(claimed[0].delivery.attempts, 0);
    assert!(s
        .claim_deliveries(d.id, at, later, 10)
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .claim_deliveries(other.id, later, later, 10)
        .await
        .unwrap()
        .is_empty());
    let id = claimed[0].delivery.id;
    let retry_at = at + chrono::Duration::seconds(5);
    s.finish_delivery(
        d.id,
        id,
        1,
        &DeliveryOutcome::Retry {
            next: retry_at,
            error: "HTTP 500".into(),
        },
        at,
    )
    .await
    .unwrap();
    assert!(s
        .claim_deliveries(d.id, at, later, 10)
        .await
        .unwrap()
        .is_empty());
    let again = s.claim_deliveries(d.id, retry_at, later, 10).await.unwrap();
    assert_eq!((again.len(), again[0].delivery.attempts), (1, 1));
    assert_eq!(
        again[0].event.id, first.event.id,
        "a retry carries the same event id"
    );
    s.finish_delivery(d.id, id, 2, &DeliveryOutcome::Sent, retry_at)
        .await
        .unwrap();
    let log = s.deliveries(d.id, 10).await.unwrap();
    assert_eq!(
        (log.len(), log[0].state, log[0].attempts),
        (1, DeliveryState::Sent, 2)
    );
    assert_eq!(log[0].last_error.as_deref(), Some("HTTP 500"));
    assert!(s
        .claim_deliveries(d.id, later, later, 10)
        .await
        .unwrap()
        .is_empty());

    // Clearing: once; then the threshold may fire again.
    let cleared = fire("budget.threshold_cleared");
    assert_eq!(
        s.record_transitions(d.id, std::slice::from_ref(&cleared))
            .await
            .unwrap(),
        [cleared.event.id]
    );
    assert!(s
        .record_transitions(d.id, &[fire("budget.threshold_cleared")])
        .await
        .unwrap()
        .is_empty());
    assert!(s.fired_thresholds(d.id).await.unwrap().is_empty());
    assert_eq!(
        s.record_transitions(d.id, &[fire("budget.threshold_crossed")])
            .await
            .unwrap()
            .len(),
        1
    );
    s.finish_delivery(
        d.id,
        s.deliveries(d.id, 1).await.unwrap()[0].id,
        9,
        &DeliveryOutcome::Failed {
            error: "gave up".into(),
        },
        later,
    )
    .await
    .unwrap();
    assert_eq!(
        s.deliveries(d.id, 10)
            .await
            .unwrap()
            .iter()
            .filter(|d| d.state == DeliveryState::Failed)
            .count(),
        1
    );
    assert_eq!(s.delivery_counts(d.id).await.unwrap(), [1, 1, 1]);
    assert_eq!(s.delivery_counts(other.id).await.unwrap(), [0, 0, 0]);

    // Updating a budget keeps its id, forgets its threshold states; names stay unique.
    let fired_before = s.fired_thresholds(d.id).await.unwrap().len();
    assert_eq!(fired_before, 1);
    let mut renamed = budget.clone();
    renamed.amount = Money::new(
        parse_decimal("5000").unwrap(),
        Currency::parse("USD").unwrap(),
    );
    s.update_budget(&renamed).await.unwrap();
    assert_eq!(
        s.budgets(d.id).await.unwrap(),
        std::slice::from_ref(&renamed)
    );
    assert!(s.fired_thresholds(d.id).await.unwrap().is_empty());
    let twin = Budget {
        id: BudgetId::new(),
        name: Name::parse("twin", "budget name").unwrap(),
        ..budget.clone()
    };
    s.create_budget(&twin).await.unwrap();
    let clash = Budget {
        name: twin.name.clone(),
        ..renamed.clone()
    };
    assert!(matches!(
        s.update_budget(&clash).await.unwrap_err(),
        StoreError::Conflict(_)
    ));
    assert!(matches!(
        s.update_budget(&Budget {
            id: BudgetId::new(),
            ..renamed.clone()
        })
        .await
        .unwrap_err(),
        StoreError::NotFound { .. }
    ));
    s.delete_budget(d.id, twin.id).await.unwrap();

    // Deleting the budget drops its states, keeps its events; a used channel can be deleted
    // (its pending deliveries go with it).
    s.delete_budget(d.id, budget.id).await.unwrap();
    assert!(s.budgets(d.id).await.unwrap().is_empty());
    assert!(s.fired_thresholds(d.id).await.unwrap().is_empty());
    assert_eq!(s.events(d.id, None, 10).await.unwrap().len(), 3);
    assert!(matches!(
        s.delete_budget(d.id, budget.id).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
    assert!(s.delete_channel(other.id, hook.id).await.is_err());
    s.delete_channel(d.id, hook.id).await.unwrap();
    assert!(s.channels(d.id).await.unwrap().is_empty());
}

#[allow(clippy::too_many_lines)] // One story: monitor, anomaly, its updates, its state.
pub async fn monitors_keep_anomalies_with_compare_and_set(h: &Harness) {
    use cloudbill_core::{AnomalyState, BudgetScope, Monitor, MonitorId, Name, StoredAnomaly};
    use cloudbill_store::AnomalyChange;
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let other = domain(s, "other").await;
    let at = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0);
    let monitor = Monitor {
        id: MonitorId::new(),
        domain: d.id,
        name: Name::parse("default", "monitor name").unwrap(),
        scope: BudgetScope::Domain,
        filters: vec![],
        dimension: "service".into(),
        z: parse_decimal("3.5").unwrap(),
        min_amount: parse_decimal("10").unwrap(),
        min_percent: parse_decimal("20").unwrap(),
        both_directions: false,
        channels: vec![],
        created_at: at,
    };
    s.create_monitor(&monitor).await.unwrap();
    assert!(matches!(
        s.create_monitor(&Monitor {
            id: MonitorId::new(),
            ..monitor.clone()
        })
        .await
        .unwrap_err(),
        StoreError::Conflict(_)
    ));
    assert_eq!(
        s.monitors(d.id).await.unwrap(),
        std::slice::from_ref(&monitor)
    );
    assert!(s.monitors(other.id).await.unwrap().is_empty());
    let day = chrono::NaiveDate::from_ymd_opt(2025, 5, 10).unwrap();
    let anomaly = StoredAnomaly {
        id: "an_0001".into(),
        domain: d.id,
        monitor: monitor.id,
        kind: "spike".into(),
        group: std::collections::BTreeMap::from([("service".into(), "AmazonRDS".into())]),
        currency: Currency::parse("USD").unwrap(),
        start: day,
        end: day,
        expected: parse_decimal("10.5").unwrap(),
        actual: parse_decimal("52.25").unwrap(),
        impact: parse_decimal("41.75").unwrap(),
        score: parse_decimal("12.3").unwrap(),
        contributors: vec![cloudbill_core::Contributor {
            group: [("region".to_owned(), "us-east-1".to_owned())].into(),
            expected: cloudbill_core::Decimal::new(1, 2),
            actual: cloudbill_core::Decimal::new(12345, 3),
            impact: cloudbill_core::Decimal::new(12335, 3),
        }],
        state: AnomalyState::Open,
        closed_reason: None,
        detected_at: at,
        updated_at: at,
        notified_impact: Some(parse_decimal("41.75").unwrap()),
        version: 1,
    };
    let event = |kind: &str| cloudbill_core::Event {
        id: cloudbill_core::EventId::new(),
        domain: d.id,
        kind: kind.into(),
        subject: monitor.id.as_uuid(),
        subject_name: "default".into(),
        occurred_at: at,
        cause: "test".into(),
        payload: "{}".into(),
    };
    let insert = AnomalyChange {
        anomaly: anomaly.clone(),
        expected_version: None,
        event: Some((event("anomaly.detected"), vec![])),
    };
    assert_eq!(
        s.apply_anomalies(d.id, std::slice::from_ref(&insert))
            .await
            .unwrap()
            .len(),
        1
    );
    // A second insert of the same anomaly (another process) writes and queues nothing.
    assert!(s
        .apply_anomalies(
            d.id,
            &[AnomalyChange {
                event: Some((event("anomaly.detected"), vec![])),
                ..insert.clone()
            }]
        )
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .apply_anomalies(other.id, std::slice::from_ref(&insert))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.stored_anomalies(d.id, None).await.unwrap(),
        std::slice::from_ref(&anomaly)
    );
    assert!(s.stored_anomalies(other.id, None).await.unwrap().is_empty());
    // Updates are compare-and-set on the version.
    let grown = StoredAnomaly {
        end: day.succ_opt().unwrap(),
        version: 2,
        ..anomaly.clone()
    };
    let update = AnomalyChange {
        anomaly: grown.clone(),
        expected_version: Some(1),
        event: None,
    };
    s.apply_anomalies(d.id, std::slice::from_ref(&update))
        .await
        .unwrap();
    let stale = AnomalyChange {
        anomaly: StoredAnomaly {
            version: 3,
            impact: cloudbill_core::Decimal::ONE,
            ..anomaly.clone()
        },
        expected_version: Some(1),
        event: Some((event("anomaly.detected"), vec![])),
    };
    assert!(s.apply_anomalies(d.id, &[stale]).await.unwrap().is_empty());
    assert_eq!(
        s.stored_anomalies(d.id, Some(monitor.id)).await.unwrap(),
        std::slice::from_ref(&grown)
    );
    // States by id, per monitor (#30: the same id kept by a second monitor keeps its own).
    let second = Monitor {
        id: MonitorId::new(),
        name: Name::parse("second", "monitor name").unwrap(),
        ..monitor.clone()
    };
    s.create_monitor(&second).await.unwrap();
    s.apply_anomalies(
        d.id,
        &[AnomalyChange {
            anomaly: StoredAnomaly {
                monitor: second.id,
                ..anomaly.clone()
            },
            expected_version: None,
            event: None,
        }],
    )
    .await
    .unwrap();
    assert_eq!(
        s.set_anomaly_state(
            d.id,
            &[monitor.id],
            "an_0001",
            AnomalyState::Acknowledged,
            at
        )
        .await
        .unwrap(),
        1
    );
    assert_eq!(
        s.set_anomaly_state(
            other.id,
            &[monitor.id],
            "an_0001",
            AnomalyState::Ignored,
            at
        )
        .await
        .unwrap(),
        0
    );
    assert_eq!(
        s.set_anomaly_state(d.id, &[monitor.id], "an_nope", AnomalyState::Ignored, at)
            .await
            .unwrap(),
        0
    );
    let kept = s.stored_anomalies(d.id, Some(second.id)).await.unwrap();
    assert_eq!((kept[0].state, kept[0].version), (AnomalyState::Open, 1));
    s.delete_monitor(d.id, second.id).await.unwrap();
    let now = s.stored_anomalies(d.id, None).await.unwrap();
    assert_eq!(
        (now[0].state, now[0].version),
        (AnomalyState::Acknowledged, 3)
    );
    assert_eq!(s.events(d.id, None, 10).await.unwrap().len(), 1);
    s.delete_monitor(d.id, monitor.id).await.unwrap();
    assert!(s.stored_anomalies(d.id, None).await.unwrap().is_empty());
    assert!(matches!(
        s.delete_monitor(d.id, monitor.id).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
}

pub async fn rates_are_kept_once_and_conflicts_write_nothing(h: &Harness) {
    use cloudbill_core::FxRate;
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let other = domain(s, "other").await;
    let rate = |date: &str, quote: &str, value: &str, source: &str| FxRate {
        date: date.parse().unwrap(),
        base: Currency::parse("EUR").unwrap(),
        quote: Currency::parse(quote).unwrap(),
        rate: parse_decimal(value).unwrap(),
        source: source.into(),
    };
    let first = [
        rate("2025-03-14", "USD", "1.0871", "ecb"),
        rate("2025-03-14", "JPY", "161.03", "ecb"),
    ];
    assert_eq!(s.put_rates(d.id, &first).await.unwrap(), 2);
    assert_eq!(
        s.put_rates(d.id, &first).await.unwrap(),
        0,
        "the same rates again: nothing new"
    );
    // A different rate for a stored (date, pair, source): refused, and the batch's new rate too.
    let clash = [
        rate("2025-03-13", "USD", "1.0854", "ecb"),
        rate("2025-03-14", "USD", "1.09", "ecb"),
    ];
    assert!(matches!(
        s.put_rates(d.id, &clash).await.unwrap_err(),
        StoreError::Conflict(_)
    ));
    assert_eq!(s.rates(d.id, None).await.unwrap().len(), 2);
    // Another source is another rate; exact decimals come back exact; domains are apart.
    s.put_rates(d.id, &[rate("2025-03-14", "USD", "1.2500000000", "budget")])
        .await
        .unwrap();
    let budget = s.rates(d.id, Some("budget")).await.unwrap();
    assert_eq!(budget.len(), 1);
    assert_eq!(budget[0].rate.to_string(), "1.2500000000");
    assert!(s.rates(other.id, None).await.unwrap().is_empty());
}

#[allow(clippy::too_many_lines)] // Invoices (kept, refused, deleted) then closed periods, in order.
pub async fn invoices_and_closed_periods_are_kept_exactly(h: &Harness) {
    use cloudbill_core::{ChangedDay, HeldDay, Invoice, JobId};
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let other = domain(s, "other").await;
    let web = project(s, d.id, "web").await;
    let acct = account(s, d.id, web.id, "aws-prod").await;
    let march = chrono::NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
    let invoice = Invoice {
        account: acct.id,
        period: march,
        currency: Currency::parse("USD").unwrap(),
        invoice_id: "INV-1".into(),
        total: parse_decimal("115.0000000001").unwrap(),
        issuer: Some("AWS".into()),
        tax: Some(parse_decimal("20").unwrap()),
    };
    assert_eq!(
        s.put_invoices(d.id, std::slice::from_ref(&invoice))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        s.put_invoices(d.id, std::slice::from_ref(&invoice))
            .await
            .unwrap(),
        0
    );
    let changed = Invoice {
        total: parse_decimal("116").unwrap(),
        ..invoice.clone()
    };
    assert!(matches!(
        s.put_invoices(d.id, &[changed]).await.unwrap_err(),
        StoreError::Conflict(_)
    ));
    assert!(matches!(
        s.put_invoices(other.id, std::slice::from_ref(&invoice))
            .await
            .unwrap_err(),
        StoreError::NotFound { .. }
    ));
    assert_eq!(
        s.invoices(d.id, Some(march)).await.unwrap(),
        std::slice::from_ref(&invoice)
    );
    assert!(s
        .invoices(
            d.id,
            Some(chrono::NaiveDate::from_ymd_opt(2025, 4, 1).unwrap())
        )
        .await
        .unwrap()
        .is_empty());
    // Deleted (#30: there was no way to remove a wrong invoice): only in its own domain, once.
    let usd = Currency::parse("USD").unwrap();
    assert_eq!(
        s.delete_invoice(other.id, acct.id, march, usd)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.delete_invoice(d.id, acct.id, march, usd).await.unwrap(),
        Some(invoice.clone())
    );
    assert!(s.invoices(d.id, None).await.unwrap().is_empty());
    assert_eq!(
        s.delete_invoice(d.id, acct.id, march, usd).await.unwrap(),
        None
    );
    s.put_invoices(d.id, std::slice::from_ref(&invoice))
        .await
        .unwrap();

    let at = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0);
    s.close_period(d.id, march, at).await.unwrap();
    assert!(matches!(
        s.close_period(d.id, march, at).await.unwrap_err(),
        StoreError::Conflict(_)
    ));
    assert_eq!(s.closed_periods(d.id).await.unwrap(), [march]);
    assert!(s.closed_periods(other.id).await.unwrap().is_empty());
    let held = HeldDay {
        job: JobId::new(),
        account: acct.id,
        day: ChangedDay {
            date: chrono::NaiveDate::from_ymd_opt(2025, 3, 10).unwrap(),
            currency: Currency::parse("USD").unwrap(),
            old_total: parse_decimal("10.5").unwrap(),
            new_total: parse_decimal("12.0000000007").unwrap(),
        },
        recorded_at: at,
    };
    s.put_held(d.id, std::slice::from_ref(&held)).await.unwrap();
    let range = cloudbill_core::DateRange::parse("2025-03-01", "2025-04-01").unwrap();
    assert_eq!(
        s.held(d.id, range).await.unwrap(),
        std::slice::from_ref(&held)
    );
    assert!(s.held(other.id, range).await.unwrap().is_empty());
    s.reopen_period(d.id, march, "late credit", at)
        .await
        .unwrap();
    assert!(matches!(
        s.reopen_period(d.id, march, "again", at).await.unwrap_err(),
        StoreError::NotFound { .. }
    ));
    assert!(s.closed_periods(d.id).await.unwrap().is_empty());
    let log = s.period_log(d.id, march).await.unwrap();
    assert_eq!(
        log.iter()
            .map(|c| (c.action.as_str(), c.reason.as_deref()))
            .collect::<Vec<_>>(),
        [("close", None), ("reopen", Some("late credit"))]
    );
}

pub async fn the_change_feed_announces_every_committed_version(h: &Harness) {
    use futures::StreamExt;
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let Some(mut feed) = s.change_feed().await.unwrap() else {
        // SQLite and memory: no feed; the version is polled.
        assert!(
            !matches!(h.raw, Raw::Postgres { .. }),
            "PostgreSQL has a feed"
        );
        return;
    };
    let before = s.data_version(d.id).await.unwrap();
    project(s, d.id, "web").await;
    // Other tests share the database: wait for this domain's notification.
    let got = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match feed.next().await {
                Some(id) if id == d.id => return true,
                Some(_) => {}
                None => return false,
            }
        }
    })
    .await
    .expect("notified within 10 s");
    assert!(got, "the feed ended");
    assert!(
        s.data_version(d.id).await.unwrap() > before,
        "the version had moved when the notification arrived"
    );
}

pub async fn the_change_log_names_what_each_version_changed(h: &Harness) {
    use cloudbill_store::{DataChange, DataChanges};
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let other = domain(s, "other").await;
    let web = project(s, d.id, "web").await;
    let a = account(s, d.id, web.id, "a").await;
    let b = account(s, d.id, web.id, "b").await;
    let v0 = s.data_version(d.id).await.unwrap();
    assert_eq!(
        s.changes_since(d.id, v0).await.unwrap(),
        Some(DataChanges::new(v0, Vec::new())),
        "nothing changed since the current version"
    );
    // A window over two months of `a`, then one month of `b`.
    let w = range("2025-02-20", "2025-03-05");
    let job = start_job(s, &a, w).await;
    let rows: Vec<_> = w
        .iter_days()
        .map(|day| record(&a, &day.to_string(), "1.5", "EC2"))
        .collect();
    s.replace_window(d.id, a.id, job, w, &rows).await.unwrap();
    let v1 = s.data_version(d.id).await.unwrap();
    let wb = range("2025-03-10", "2025-03-12");
    let jb = start_job(s, &b, wb).await;
    s.replace_window(d.id, b.id, jb, wb, &[record(&b, "2025-03-10", "2", "S3")])
        .await
        .unwrap();
    // Another domain's changes are not this one's.
    project(s, other.id, "elsewhere").await;
    let v2 = s.data_version(d.id).await.unwrap();
    let feb = date("2025-02-01");
    let mar = date("2025-03-01");
    assert_eq!(
        s.changes_since(d.id, v0).await.unwrap(),
        Some(DataChanges::new(
            v2,
            vec![
                DataChange::Month(a.id, feb),
                DataChange::Month(a.id, mar),
                DataChange::Month(b.id, mar),
            ]
        ))
    );
    assert_eq!(
        s.changes_since(d.id, v1).await.unwrap().unwrap().changes,
        vec![DataChange::Month(b.id, mar)],
        "only what came after v1"
    );
    // The slices' partitions, in month order, in one read: exactly those changed.
    let mut seen = Vec::new();
    s.for_each_slice(
        d.id,
        &[DataChange::Month(a.id, mar), DataChange::Account(b.id)],
        &mut |account, blob: &[u8]| {
            let p = cloudbill_columnar::Partition::decode(blob).unwrap();
            seen.push((account, p.month, p.rows));
            true
        },
    )
    .await
    .unwrap();
    seen.sort();
    let mut want = vec![(a.id, mar, 4), (b.id, mar, 1)];
    want.sort();
    assert_eq!(seen, want);
    // Catalog changes: a project, a move, a deleted account (all its months).
    let api = project(s, d.id, "api").await;
    let history = s.assignments(d.id, b.id).await.unwrap();
    let mut moved = history.clone();
    moved.push(cloudbill_core::Assignment {
        project: api.id,
        from: Some(date("2025-03-11")),
    });
    s.set_assignments(d.id, b.id, &history, &moved)
        .await
        .unwrap();
    s.delete_account(d.id, a.id).await.unwrap();
    let v3 = s.data_version(d.id).await.unwrap();
    assert_eq!(
        s.changes_since(d.id, v2).await.unwrap(),
        Some(DataChanges::new(
            v3,
            vec![DataChange::Catalog, DataChange::Account(a.id)]
        ))
    );
    // A version the store never had: reload whole.
    assert_eq!(s.changes_since(d.id, v3 + 5).await.unwrap(), None);
    // A domain never changed: nothing since 0.
    let fresh = domain(s, "fresh").await;
    let version = s.data_version(fresh.id).await.unwrap();
    assert_eq!(
        s.changes_since(fresh.id, version).await.unwrap(),
        Some(DataChanges::new(version, Vec::new()))
    );
}

pub async fn the_change_log_keeps_the_last_versions_only(h: &Harness) {
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let v0 = s.data_version(d.id).await.unwrap();
    for i in 0..(cloudbill_store::CHANGE_LOG_VERSIONS + 70) {
        project(s, d.id, &format!("p{i}")).await;
    }
    let now = s.data_version(d.id).await.unwrap();
    assert_eq!(
        s.changes_since(d.id, v0).await.unwrap(),
        None,
        "a version older than the log reloads whole"
    );
    let recent = s
        .changes_since(d.id, now - 10)
        .await
        .unwrap()
        .expect("the last versions are logged");
    assert_eq!(recent.version, now);
    assert!(recent.catalog());
}

/// An account read while it is removed is found whole or not at all (never "corrupt"), and a
/// list read while accounts are added holds each one whole: the API fuzzing found a 500 when
/// a removal fell between reading an account's row and its project history.
pub async fn accounts_read_while_removed_are_whole_or_absent(h: &Harness) {
    let s = Arc::clone(&h.store);
    let d = domain(&*s, "acme").await;
    let web = project(&*s, d.id, "web").await;
    for i in 0..40 {
        let a = account(&*s, d.id, web.id, &format!("a{i}")).await;
        let (reader, remover, lister) = (Arc::clone(&s), Arc::clone(&s), Arc::clone(&s));
        let id = a.id;
        let read = tokio::spawn(async move {
            for _ in 0..5 {
                match reader.account(d.id, id).await {
                    Ok(found) => assert_eq!(found.project, web.id),
                    Err(e) => assert!(matches!(e, StoreError::NotFound { .. }), "{e}"),
                }
            }
        });
        let remove = tokio::spawn(async move { remover.delete_account(d.id, id).await });
        let add = {
            let adder = Arc::clone(&s);
            tokio::spawn(async move {
                adder
                    .create_account(&account_value(d.id, web.id, &format!("b{i}")))
                    .await
            })
        };
        let list = tokio::spawn(async move { lister.accounts(d.id).await });
        read.await.unwrap();
        remove.await.unwrap().unwrap();
        add.await.unwrap().unwrap();
        let listed = list.await.unwrap().unwrap();
        assert!(listed.iter().all(|x| x.project == web.id));
    }
}

/// A window's source revision is kept exactly per (account, window), replaced, forgotten, and
/// gone with its account; a revision for an account that does not exist is not kept.
pub async fn source_revisions_are_kept_per_account_window(h: &Harness) {
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let web = project(s, d.id, "web").await;
    let a = account(s, d.id, web.id, "aws").await;
    let b = account(s, d.id, web.id, "azure").await;
    let march = range("2025-03-01", "2025-04-01");
    let part = range("2025-03-01", "2025-03-15");
    assert_eq!(s.source_revision(a.id, march).await.unwrap(), None);
    s.set_source_revision(a.id, march, Some("r1".into()))
        .await
        .unwrap();
    s.set_source_revision(b.id, march, Some("other".into()))
        .await
        .unwrap();
    assert_eq!(
        s.source_revision(a.id, march).await.unwrap().as_deref(),
        Some("r1")
    );
    // Another window of the same account is its own key, even when it overlaps.
    assert_eq!(s.source_revision(a.id, part).await.unwrap(), None);
    s.set_source_revision(a.id, march, Some("r2".into()))
        .await
        .unwrap();
    assert_eq!(
        s.source_revision(a.id, march).await.unwrap().as_deref(),
        Some("r2")
    );
    s.set_source_revision(a.id, march, None).await.unwrap();
    assert_eq!(s.source_revision(a.id, march).await.unwrap(), None);
    assert_eq!(
        s.source_revision(b.id, march).await.unwrap().as_deref(),
        Some("other")
    );
    s.delete_account(d.id, b.id).await.unwrap();
    assert_eq!(s.source_revision(b.id, march).await.unwrap(), None);
    let gone = cloudbill_core::AccountId::new();
    s.set_source_revision(gone, march, Some("x".into()))
        .await
        .unwrap();
    assert_eq!(s.source_revision(gone, march).await.unwrap(), None);
}

pub async fn allocation_rules_are_kept_as_versions(h: &Harness) {
    use cloudbill_core::{AllocationId, AllocationMethod, AllocationRule, AllocationSpec, Name};
    let s = &*h.store;
    let d = domain(s, "acme").await;
    let other = domain(s, "other").await;
    let at = chrono::Utc::now();
    let rule = |id: AllocationId, version: u32, name: &str, deleted: bool| AllocationRule {
        id,
        domain: d.id,
        version,
        name: Name::parse(name, "rule").unwrap(),
        start: date("2025-01-01"),
        spec: AllocationSpec {
            source: [("project".to_owned(), vec!["shared".to_owned()])].into(),
            target: "project".into(),
            targets: vec!["a".into(), "b".into()],
            method: AllocationMethod::Fixed,
            weights: vec!["33.33".parse().unwrap(), "66.67".parse().unwrap()],
            priority: 1,
        },
        deleted,
        changed_by: "admin".into(),
        changed_at: at,
    };
    let support = AllocationId::new();
    s.add_allocation_version(&rule(support, 1, "support", false))
        .await
        .unwrap();
    // Creating it twice, skipping a version, or a version of no rule: refused.
    assert!(matches!(
        s.add_allocation_version(&rule(support, 1, "support", false))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.add_allocation_version(&rule(support, 3, "support", false))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.add_allocation_version(&rule(AllocationId::new(), 2, "x", false))
            .await,
        Err(StoreError::NotFound { .. })
    ));
    // Another live rule may not take the name; a deleted one frees it.
    let dup = AllocationId::new();
    assert!(matches!(
        s.add_allocation_version(&rule(dup, 1, "support", false))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let mut v2 = rule(support, 2, "support", false);
    v2.start = date("2025-03-01");
    v2.spec.method = AllocationMethod::Even;
    v2.spec.weights.clear();
    s.add_allocation_version(&v2).await.unwrap();
    s.add_allocation_version(&rule(support, 3, "support", true))
        .await
        .unwrap();
    s.add_allocation_version(&rule(dup, 1, "support", false))
        .await
        .unwrap();
    let all = s.allocation_versions(d.id).await.unwrap();
    assert_eq!(all.len(), 4);
    let kept: Vec<_> = all.iter().filter(|r| r.id == support).collect();
    assert_eq!(
        kept.iter().map(|r| r.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    // Exactly as written: weights, dates, method, deletion.
    assert_eq!(kept[0].spec.weights[1].to_string(), "66.67");
    assert_eq!(kept[1].start, date("2025-03-01"));
    assert_eq!(kept[1].spec.method, AllocationMethod::Even);
    assert!(kept[2].deleted && !kept[1].deleted);
    assert!(s.allocation_versions(other.id).await.unwrap().is_empty());
}
