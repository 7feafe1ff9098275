//! The HTTP side of the visualisation: the page (shipped inside the binary), the JSON API it
//! uses, and a server-sent-event stream of the overlay.

use std::{convert::Infallible, time::Duration};

use axum::{
    Json, Router,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::{get, post},
};
use futures::Stream;
use libp2p::PeerId;
use tokio::{net::TcpListener, sync::watch, time::Instant};

use crate::{
    api::{NetError, SettingsUpdate},
    network::Network,
};

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

/// At most this many graph frames per second go to one event-stream client.
const FRAME_INTERVAL: Duration = Duration::from_millis(200);
/// A frame goes out at least this often, so that rates stay current while nothing changes.
const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// The page and the API over `network`.
pub fn router(network: Network) -> Router {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX_HTML)))
        .route(
            "/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/style.css",
            get(|| asset("text/css; charset=utf-8", STYLE_CSS)),
        )
        .route("/api/graph", get(graph))
        .route("/api/events", get(events))
        .route("/api/peers", post(add_peer))
        .route("/api/peers/{id}", axum::routing::delete(kill_peer))
        .route("/api/peers/{id}/shuffle", post(shuffle_peer))
        .route("/api/settings", get(settings).put(update_settings))
        .with_state(network)
}

/// Serves the page and the API on `listener` until the future is dropped.
pub async fn serve(listener: TcpListener, network: Network) -> std::io::Result<()> {
    axum::serve(listener, router(network)).await
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// An API error: a status and `{"error": "..."}`.
struct ApiError(StatusCode, String);

impl From<NetError> for ApiError {
    fn from(error: NetError) -> Self {
        let status = match error {
            NetError::UnknownPeer => StatusCode::NOT_FOUND,
            NetError::PeerDead => StatusCode::GONE,
            NetError::EmptyView => StatusCode::CONFLICT,
            NetError::InvalidOptions(_) => StatusCode::BAD_REQUEST,
            NetError::Swarm(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn peer_id(id: &str) -> Result<PeerId, ApiError> {
    id.parse()
        .map_err(|_| ApiError(StatusCode::BAD_REQUEST, format!("not a peer id: {id}")))
}

async fn graph(State(network): State<Network>) -> impl IntoResponse {
    Json(network.graph())
}

async fn add_peer(State(network): State<Network>) -> Result<impl IntoResponse, ApiError> {
    let node = network.add_peer().await?;
    Ok((StatusCode::CREATED, Json(node)))
}

async fn kill_peer(
    State(network): State<Network>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    network.kill_peer(&peer_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn shuffle_peer(
    State(network): State<Network>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let started = network.shuffle_peer(&peer_id(&id)?).await?;
    Ok((StatusCode::ACCEPTED, Json(started)))
}

async fn settings(State(network): State<Network>) -> impl IntoResponse {
    Json(network.settings())
}

async fn update_settings(
    State(network): State<Network>,
    Json(update): Json<SettingsUpdate>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(network.update_settings(update).await?))
}

/// `GET /api/events`: a `graph` event with the same JSON as `GET /api/graph` at once, then
/// whenever the overlay changes (at most every [`FRAME_INTERVAL`]) and at least every
/// [`REFRESH_INTERVAL`].
async fn events(
    State(network): State<Network>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    struct Client {
        network: Network,
        changes: watch::Receiver<u64>,
        last: Option<Instant>,
    }
    let client = Client {
        changes: network.subscribe(),
        network,
        last: None,
    };
    let frames = futures::stream::unfold(client, |mut client| async move {
        if let Some(last) = client.last {
            // Wait for a change (or the refresh), then keep to the frame rate.
            tokio::select! {
                changed = client.changes.changed() => changed.ok()?,
                () = tokio::time::sleep_until(last + REFRESH_INTERVAL) => {}
            }
            tokio::time::sleep_until(last + FRAME_INTERVAL).await;
        }
        client.changes.borrow_and_update();
        client.last = Some(Instant::now());
        let event = Event::default()
            .event("graph")
            .json_data(client.network.graph())
            .unwrap_or_else(|error| Event::default().comment(format!("error: {error}")));
        Some((Ok(event), client))
    });
    Sse::new(frames).keep_alive(KeepAlive::default())
}
