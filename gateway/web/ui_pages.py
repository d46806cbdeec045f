"""The UI's routes: login and logout, static files, the queue, the item page with its actions, runs and
deliveries, the live stream.

Each POST names the page its form is on, so a refused action shows that page again with the reason.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from gateway.desk import access
from gateway.web import guard, live, ui, ui_item, ui_queue, ui_runs
from gateway.web.ui import endpoint


def routes() -> list[BaseRoute]:
    decide = access.REVIEWS_DECIDE
    item = "/reviews/{review_id}"
    page = ui_item.item_page
    run_page, delivery_page = ui_runs.run_page, ui_runs.delivery_page
    return [
        Route("/", guard.mark(guard.PUBLIC, ui.home), methods=["GET"]),
        Route("/login", guard.mark(guard.PUBLIC, ui.login_page), methods=["GET"]),
        Route("/login", guard.mark(guard.PUBLIC, ui.login), methods=["POST"]),
        Route("/logout", endpoint(guard.SESSION, ui.logout), methods=["POST"]),
        Route("/static/{name}", guard.mark(guard.PUBLIC, ui.static), methods=["GET"]),
        Route("/reviews", endpoint(access.REVIEWS_READ, ui_queue.queue), methods=["GET"]),
        Route("/reviews/search", endpoint(access.REVIEWS_READ, ui_queue.search), methods=["POST"]),
        Route("/reviews/bulk", endpoint(decide, ui_queue.bulk, ui_queue.queue), methods=["POST"]),
        Route("/live", endpoint(access.REVIEWS_READ, live.stream), methods=["GET"]),
        Route(item, endpoint(access.REVIEWS_READ, page), methods=["GET"]),
        Route(f"{item}/claim", endpoint(decide, ui_item.claim, page), methods=["POST"]),
        Route(f"{item}/release", endpoint(decide, ui_item.release, page), methods=["POST"]),
        Route(f"{item}/reassign", endpoint(decide, ui_item.reassign, page), methods=["POST"]),
        Route(f"{item}/decide", endpoint(decide, ui_item.decide, page), methods=["POST"]),
        Route(f"{item}/approve", endpoint(decide, ui_item.approve, page), methods=["POST"]),
        Route(f"{item}/reject", endpoint(decide, ui_item.reject, page), methods=["POST"]),
        Route("/runs", endpoint(access.RUNS_READ, ui_runs.runs_page), methods=["GET"]),
        Route("/runs/{run_id}", endpoint(access.RUNS_READ, run_page), methods=["GET"]),
        Route("/runs/{run_id}/retry", endpoint(access.RUNS_RETRY, ui_runs.retry_run, run_page), methods=["POST"]),
        Route("/deliveries", endpoint(access.RUNS_READ, ui_runs.deliveries_page), methods=["GET"]),
        Route("/deliveries/{delivery_id}", endpoint(access.RUNS_READ, delivery_page), methods=["GET"]),
        Route(
            "/deliveries/{delivery_id}/retry",
            endpoint(access.DELIVERIES_REPLAY, ui_runs.retry_delivery, delivery_page),
            methods=["POST"],
        ),
    ]
