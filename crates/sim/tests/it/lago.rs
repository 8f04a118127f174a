use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{acme, client, spawn};

fn event(transaction_id: &str) -> Value {
    json!({"event": {
        "transaction_id": transaction_id,
        "external_subscription_id": "demo-acme",
        "code": "synced_connections",
        "timestamp": 1_767_225_600,
        "properties": {"records": 262, "api_calls": 9},
    }})
}

#[tokio::test]
async fn lago_stores_an_event_once_per_transaction_id_and_refuses_what_lago_would() {
    let sim = spawn([acme(1)]).await;
    let events = format!("{}/api/v1/events", sim.lago_url());
    let post =
        |body: Value, key: &'static str| client().post(&events).bearer_auth(key).json(&body).send();

    let stored = post(event("run-1"), fleet_sim::LAGO_API_KEY).await.unwrap();
    assert_eq!(stored.status(), StatusCode::OK);
    let answer: Value = stored.json().await.unwrap();
    assert_eq!(answer["event"]["transaction_id"], "run-1");
    assert_eq!(answer["event"]["properties"]["records"], 262);

    let again = post(event("run-1"), fleet_sim::LAGO_API_KEY).await.unwrap();
    assert_eq!(again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let answer: Value = again.json().await.unwrap();
    assert_eq!(
        answer["error_details"]["transaction_id"][0],
        "value_already_exist"
    );

    let wrong_key = post(event("run-2"), "not-the-key").await.unwrap();
    assert_eq!(wrong_key.status(), StatusCode::UNAUTHORIZED);
    let mut no_code = event("run-3");
    no_code["event"].as_object_mut().unwrap().remove("code");
    let refused = post(no_code, fleet_sim::LAGO_API_KEY).await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let answer: Value = refused.json().await.unwrap();
    assert!(answer["message"].as_str().unwrap().contains("event.code"));

    let listed: Value = client()
        .get(format!("{}/_sim/lago/events", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["events"].as_array().unwrap().len(), 1);
    assert_eq!(
        sim.lago_events(),
        listed["events"].as_array().unwrap().clone()
    );
}
