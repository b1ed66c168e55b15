//! Limit conversions: DTO to domain and back, and the validation messages people will read.

use api_types::{GlobalLimitInput, Limit, LimitPer, PolicySources};
use expect_test::{expect, Expect};

use super::*;

fn check(result: Result<impl std::fmt::Debug, Error>, expect: Expect) {
    let actual = match result {
        Ok(value) => format!("ok {value:?}"),
        Err(err) => err.to_string(),
    };
    expect.assert_eq(&actual);
}

fn limit(json: serde_json::Value) -> Limit {
    serde_json::from_value(json).unwrap()
}

#[test]
fn the_config_file_examples_convert() {
    check(
        limit_from_dto(
            "limits[0]",
            &limit(serde_json::json!({"spend_usd": 500, "per": "user", "window": "30d"})),
        ),
        expect!["ok Limit { metric: Spend, per: User, cap: 500000000, window_secs: 2592000 }"],
    );
    check(
        limit_from_dto(
            "limits[1]",
            &limit(serde_json::json!({"tokens": 400000, "per": "user", "window": "1m"})),
        ),
        expect!["ok Limit { metric: Tokens, per: User, cap: 400000, window_secs: 60 }"],
    );
    check(
        limit_from_dto(
            "",
            &limit(serde_json::json!({"requests": 60, "per": "group", "window": "1m"})),
        ),
        expect!["ok Limit { metric: Requests, per: Group, cap: 60, window_secs: 60 }"],
    );
    // Cents and fractions of a cent are kept, to the micro-dollar.
    check(
        limit_from_dto("", &Limit::spend(0.125_000_4, LimitPer::User, "1h")),
        expect!["ok Limit { metric: Spend, per: User, cap: 125000, window_secs: 3600 }"],
    );
    // A cap of 0 freezes: allowed.
    check(
        limit_from_dto("", &Limit::requests(0, LimitPer::User, "1d")),
        expect!["ok Limit { metric: Requests, per: User, cap: 0, window_secs: 86400 }"],
    );
}

#[test]
fn round_trips_give_the_shortest_window() {
    for (given, shown) in [
        (Limit::spend(500.0, LimitPer::User, "30d"), "30d"),
        (Limit::spend(0.01, LimitPer::Group, "720h"), "30d"),
        (Limit::tokens(400_000, LimitPer::User, "60s"), "1m"),
        (Limit::requests(60, LimitPer::Group, "90s"), "90s"),
        (Limit::requests(1, LimitPer::User, "90m"), "90m"),
        (Limit::tokens(0, LimitPer::User, "1440m"), "1d"),
    ] {
        let back = limit_to_dto(&limit_from_dto("", &given).unwrap());
        let mut expected = given.clone();
        expected.window = shown.to_owned();
        assert_eq!(back, expected, "{given:?}");
        // And converting the answer again gives the same domain limit.
        assert_eq!(limit_from_dto("", &back).unwrap(), limit_from_dto("", &given).unwrap());
    }
}

#[test]
fn validation_names_the_field() {
    check(
        limit_from_dto("limits[2]", &limit(serde_json::json!({"window": "1h"}))),
        expect!["limits[2]: a limit needs one of spend_usd, tokens or requests"],
    );
    check(
        limit_from_dto("", &limit(serde_json::json!({"window": "1h"}))),
        expect!["limit: a limit needs one of spend_usd, tokens or requests"],
    );
    check(
        limit_from_dto(
            "limits[0]",
            &limit(serde_json::json!({"spend_usd": 1, "requests": 5, "window": "1h"})),
        ),
        expect!["limits[0].requests: a limit sets exactly one of spend_usd, tokens or requests, not spend_usd and requests"],
    );
    check(
        limit_from_dto(
            "",
            &limit(serde_json::json!({"spend_usd": 1, "tokens": 2, "requests": 5, "window": "1h"})),
        ),
        expect!["tokens: a limit sets exactly one of spend_usd, tokens or requests, not spend_usd and tokens and requests"],
    );
    check(
        limit_from_dto("limits[0]", &Limit::spend(-1.0, LimitPer::User, "1h")),
        expect!["limits[0].spend_usd: must be between 0 and 1000000000 USD"],
    );
    check(
        limit_from_dto("", &Limit::spend(1e9 + 1.0, LimitPer::User, "1h")),
        expect!["spend_usd: must be between 0 and 1000000000 USD"],
    );
    check(
        limit_from_dto("", &Limit::spend(f64::NAN, LimitPer::User, "1h")),
        expect!["spend_usd: must be between 0 and 1000000000 USD"],
    );
    check(
        limit_from_dto("", &Limit::spend(1e9, LimitPer::User, "1h")),
        expect!["ok Limit { metric: Spend, per: User, cap: 1000000000000000, window_secs: 3600 }"],
    );
    check(
        limit_from_dto("limits[0]", &Limit::tokens(5, LimitPer::User, "")),
        expect!["limits[0].window: is required: a whole number and a unit s, m, h or d, e.g. 1m, 24h, 30d"],
    );
    check(
        limit_from_dto("limits[0]", &Limit::tokens(5, LimitPer::User, "59s")),
        expect!["limits[0].window: '59s' is shorter than one minute (1m), the shortest window"],
    );
    check(
        limit_from_dto("", &Limit::tokens(5, LimitPer::User, "1w")),
        expect!["window: '1w' is not a window: use a whole number and a unit s, m, h or d, e.g. 1m, 24h, 30d"],
    );
    check(
        limit_from_dto("", &Limit::tokens(5, LimitPer::User, "3651d")),
        expect!["window: '3651d' is longer than 3650d, the longest window"],
    );
    check(
        limit_from_dto("", &Limit::tokens(5, LimitPer::User, "99999999999999999999d")),
        expect!["window: '99999999999999999999d' is too long"],
    );
}

#[test]
fn identical_policy_limits_are_merged() {
    let limits = [
        Limit::tokens(5, LimitPer::User, "1h"),
        Limit::requests(5, LimitPer::User, "1h"),
        Limit::tokens(5, LimitPer::User, "60m"),
    ];
    assert_eq!(limits_from_dto(&limits).unwrap().len(), 2);
    check(
        limits_from_dto(&[
            Limit::tokens(5, LimitPer::User, "1h"),
            Limit::tokens(5, LimitPer::User, "1s"),
        ]),
        expect!["limits[1].window: '1s' is shorter than one minute (1m), the shortest window"],
    );
}

#[test]
fn global_limits_need_targets() {
    let input = GlobalLimitInput::new(
        None,
        PolicySources::default(),
        Limit::requests(5, LimitPer::User, "1m"),
    );
    check(
        from_input("g".into(), input.clone()),
        expect![
            "targets: a global limit needs at least one target: groups, users, agents, or everyone"
        ],
    );
    let mut bad = input.clone();
    bad.targets.agents = vec!["bad agent".into()];
    check(
        from_input("g".into(), bad),
        expect!["targets.agents[0]: 'bad agent' contains ' '; use only letters, digits, '.', '_' and '-'"],
    );
    let mut ok = input;
    ok.targets.groups = vec!["data science".into()];
    ok.targets.everyone = true;
    check(
        from_input("g".into(), ok),
        expect![[
            r#"ok GlobalLimit { name: "g", targets: [Everyone, Group("data science")], limit: Limit { metric: Requests, per: User, cap: 5, window_secs: 60 } }"#
        ]],
    );
}
