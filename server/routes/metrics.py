"""`GET /metrics`: the server's and its bots' metrics for Prometheus to scrape."""

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from server.deps import MetricsReaderDep
from server.models import ErrorBody
from server.server_metrics import ServerMetrics

router = APIRouter(tags=["operators"])


@router.get(
    "/metrics",
    dependencies=[MetricsReaderDep],
    response_class=Response,
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
)
def metrics(request: Request) -> Response:
    """Every metric in Prometheus's text format (read from files: runs in a worker thread)."""
    server_metrics: ServerMetrics = request.app.state.metrics
    return Response(server_metrics.render(), media_type=CONTENT_TYPE_LATEST)
