//! Trello syncs skip what one board or card does not let them read, and
//! ask for re-authorisation only when Trello refuses the token itself.

use fleet_events::{ConnectionStatus, SetupOrigin};
use fleet_sim::{TrelloChange, TrelloMemberConfig};
use fleet_store::RecordQuery;

use crate::exact::{MEMBER, Statuses, TRELLO_CATALOG, trello_consent};
use crate::helpers::TestFleet;

/// A fleet whose Trello member has boards of 3, 2 and 3 cards (one page
/// each), and her credentials.
async fn fleet_with_boards() -> (TestFleet, fleet_connectors::Credentials, Vec<String>) {
    let fleet = TestFleet::start_with_catalog("trello", TRELLO_CATALOG).await;
    let member = TrelloMemberConfig::new(MEMBER).board(3).board(2).board(3);
    fleet.sim.set_trello_member(&member);
    let credentials = trello_consent(&fleet).await;
    let boards = fleet
        .sim
        .trello_boards(MEMBER)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    (fleet, credentials, boards)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_deleted_during_a_sync_is_skipped_and_the_sync_ends_partial_naming_it() {
    let (fleet, credentials, boards) = fleet_with_boards().await;
    // The setup's requests: the member (validation), the boards (the
    // `boards` stream), the boards again and the first board's cards
    // (`cards`); the second board goes before its cards are asked for.
    fleet.sim.change_trello_on_request(
        MEMBER,
        5,
        TrelloChange::DeleteBoard {
            board: boards[1].clone(),
        },
    );

    let (connection, _) = fleet
        .connect_to("trello", SetupOrigin::Oauth, &credentials)
        .await;
    let mut statuses = Statuses::watch(&fleet, &connection).await;
    let end = statuses.next_end().await;

    let ConnectionStatus::Partial { reason, .. } = &end else {
        panic!("expected partial, got {end:?}");
    };
    assert!(
        reason.contains("board \"Board 2\" (deleted during the sync)"),
        "{reason}"
    );
    let cards = fleet
        .deps
        .store
        .list_records(RecordQuery {
            tenant: &fleet.tenant,
            connection: &connection,
            stream: Some("cards"),
            updated_since: None,
            include_deleted: false,
            after: None,
            limit: 100,
        })
        .await
        .unwrap();
    let mut stored: Vec<String> = cards.records.into_iter().map(|r| r.external_id).collect();
    stored.sort();
    let open: Vec<String> = fleet
        .sim
        .trello_cards(MEMBER)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(stored, open, "the other boards' cards are all stored");
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_board_left_is_skipped_but_a_refused_token_asks_for_reauthorisation() {
    let (fleet, credentials, boards) = fleet_with_boards().await;
    let (connection, _) = fleet
        .connect_to("trello", SetupOrigin::Oauth, &credentials)
        .await;
    let mut statuses = Statuses::watch(&fleet, &connection).await;
    assert!(matches!(
        statuses.next_end().await,
        ConnectionStatus::Synced { .. }
    ));

    // A card of the first board changes; the member is removed from the
    // board after the sync lists it (the boards, the boards again), before
    // it reads the board's activity.
    let card = fleet.sim.trello_cards(MEMBER)[0].0.clone();
    fleet
        .sim
        .change_trello(MEMBER, &TrelloChange::EditCard { card });
    fleet.sim.change_trello_on_request(
        MEMBER,
        3,
        TrelloChange::LeaveBoard {
            board: boards[0].clone(),
        },
    );
    fleet.sync_now("trello", &connection).await;
    let left = statuses.next_end().await;
    // The token itself refused: nothing to skip, the user reconnects.
    let secrecy_token = match &credentials {
        fleet_connectors::Credentials::OAuth1 { token, .. } => {
            secrecy::ExposeSecret::expose_secret(token).to_owned()
        }
        other => panic!("expected OAuth 1.0a credentials, got {other:?}"),
    };
    assert!(fleet.sim.revoke_trello_token(&secrecy_token));
    fleet.sync_now("trello", &connection).await;
    let refused = statuses.next_final().await;

    let ConnectionStatus::Partial { reason, .. } = &left else {
        panic!("expected partial, got {left:?}");
    };
    assert!(
        reason.contains("board \"Board 1\" (access refused: unauthorized permission requested)"),
        "{reason}"
    );
    let ConnectionStatus::ReauthRequired { reason } = &refused else {
        panic!("expected reauth_required, got {refused:?}");
    };
    assert!(reason.contains("reconnect"), "{reason}");
    fleet.stop().await;
}
