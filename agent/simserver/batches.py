"""OpenAI's Files and Batches endpoints, simulated: upload a JSONL of chat completion requests,
create a batch from it, poll it, read its output and error files.

A batch finishes `batch_delay_seconds` after it was created (at the first poll after that). Its
lines are answered as /v1/chat/completions answers them, each line drawing from the same fault
plan: 429, 500 and timeout become a line with that error status, bad_json a truncated answer.
A whole batch can fail or expire (`batch_faults` in order, then `batch_fault_rate`): an expired
batch answers the first half of its lines and reports the rest as `batch_expired`.
"""

import json
import time
from typing import Any

from aiohttp import web

from labelagent.simserver.app import STATE, SimState, build_completion
from labelagent.simserver.faults import server_error

LINE_STATUS = {"429": 429, "500": 500, "timeout": 504}
ENDPOINT = "/v1/chat/completions"


def _file_object(file_id: str, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": len(data),
        "created_at": int(time.time()),
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
    }


def _error(message: str, status: int) -> web.Response:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    return web.json_response({"error": error}, status=status)


def _store_file(state: SimState, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
    file_id = f"file-sim{state.next_id():08x}"
    state.files[file_id] = (_file_object(file_id, data, filename, purpose), data)
    return state.files[file_id][0]


async def upload_file(request: web.Request) -> web.Response:
    state: SimState = request.app[STATE]
    form = await request.post()
    upload, purpose = form.get("file"), form.get("purpose")
    if upload is None or not hasattr(upload, "file") or purpose != "batch":
        return _error("a 'file' and purpose 'batch' are required", 400)
    state.count("files_uploaded")
    return web.json_response(_store_file(state, upload.file.read(), upload.filename, "batch"))


async def file_content(request: web.Request) -> web.Response:
    state: SimState = request.app[STATE]
    found = state.files.get(request.match_info["file_id"])
    if found is None:
        return _error("no such file", 404)
    return web.Response(body=found[1], content_type="application/octet-stream")


async def create_batch(request: web.Request) -> web.Response:
    state: SimState = request.app[STATE]
    body = await request.json()
    file_id = body.get("input_file_id")
    if file_id not in state.files or body.get("endpoint") != ENDPOINT:
        return _error(f"input_file_id must be an uploaded file and endpoint {ENDPOINT}", 400)
    batch_id = f"batch_sim{state.next_id():08x}"
    now = int(time.time())
    state.batches[batch_id] = {
        "id": batch_id,
        "object": "batch",
        "endpoint": ENDPOINT,
        "errors": None,
        "input_file_id": file_id,
        "completion_window": body.get("completion_window", "24h"),
        "status": "in_progress",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": now,
        "in_progress_at": now,
        "expires_at": now + 86400,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": body.get("metadata"),
    }
    state.batch_due[batch_id] = time.monotonic() + state.config.batch_delay_seconds
    state.count("batches_created")
    if state.counts["batches_created"] <= state.config.lost_batch_creations:
        return server_error()
    return web.json_response(state.batches[batch_id])


async def retrieve_batch(request: web.Request) -> web.Response:
    state: SimState = request.app[STATE]
    batch_id = request.match_info["batch_id"]
    if batch_id not in state.batches:
        return _error("no such batch", 404)
    state.count("batch_polls")
    if batch_id in state.batch_due and time.monotonic() >= state.batch_due[batch_id]:
        _finish(state, batch_id)
    return web.json_response(state.batches[batch_id])


async def list_batches(request: web.Request) -> web.Response:
    """Newest first, `limit` at a time, from after the batch `after`."""
    state: SimState = request.app[STATE]
    newest_first = list(reversed(state.batches.values()))
    after = request.query.get("after")
    if after is not None:
        ids = [b["id"] for b in newest_first]
        newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
    limit = int(request.query.get("limit", 20))
    page = newest_first[:limit]
    return web.json_response(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(newest_first) > limit,
        }
    )


async def cancel_batch(request: web.Request) -> web.Response:
    state: SimState = request.app[STATE]
    batch = state.batches.get(request.match_info["batch_id"])
    if batch is None:
        return _error("no such batch", 404)
    if state.batch_due.pop(batch["id"], None) is not None:
        batch.update(status="cancelled", cancelled_at=int(time.time()))
    return web.json_response(batch)


def _finish(state: SimState, batch_id: str) -> None:
    """Answer the batch's lines, or fail or expire it, as its fault says."""
    del state.batch_due[batch_id]
    batch = state.batches[batch_id]
    fault = state.next_batch_fault()
    if fault == "failed":
        state.count("batches_failed")
        failure = {
            "code": "simulated_failure",
            "message": "The batch failed (simulated).",
            "param": None,
            "line": None,
        }
        batch.update(status="failed", failed_at=int(time.time()))
        batch["errors"] = {"object": "list", "data": [failure]}
        return
    lines = [json.loads(line) for line in state.files[batch["input_file_id"]][1].splitlines()]
    answered = lines[: len(lines) // 2] if fault == "expired" else lines
    output, errors = [], []
    for line in answered:
        result = _answer_line(state, line)
        (output if result["response"]["status_code"] == 200 else errors).append(result)
    for line in lines[len(answered) :]:
        expired = {
            "code": "batch_expired",
            "message": "This request could not be executed before the completion window expired.",
        }
        errors.append(
            {"id": None, "custom_id": line["custom_id"], "response": None, "error": expired}
        )
    if fault == "expired":
        state.count("batches_expired")
    batch.update(
        status="expired" if fault == "expired" else "completed",
        completed_at=int(time.time()),
        request_counts={"total": len(lines), "completed": len(output), "failed": len(errors)},
        output_file_id=_jsonl_file(state, output, batch_id, "output"),
        error_file_id=_jsonl_file(state, errors, batch_id, "error"),
    )


def _jsonl_file(state: SimState, rows: list[dict], batch_id: str, kind: str) -> str | None:
    if not rows:
        return None
    data = "".join(json.dumps(row) + "\n" for row in rows).encode()
    return _store_file(state, data, f"{batch_id}_{kind}.jsonl", "batch_output")["id"]


def _answer_line(state: SimState, line: dict) -> dict:
    body = line["body"]
    state.record(body)
    fault = state.faults.next_fault()
    request_id = f"req_sim{state.next_id():08x}"
    if fault in LINE_STATUS:
        state.count(fault)
        message = {"message": f"simulated {fault}", "type": "server_error", "code": fault}
        response = {
            "status_code": LINE_STATUS[fault],
            "request_id": request_id,
            "body": {"error": message},
        }
    else:
        state.count(fault or "ok")
        completion = build_completion(state, body, fault)
        response = {"status_code": 200, "request_id": request_id, "body": completion}
    return {
        "id": f"batch_req_{request_id}",
        "custom_id": line["custom_id"],
        "response": response,
        "error": None,
    }


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/files", upload_file)
    app.router.add_get("/v1/files/{file_id}/content", file_content)
    app.router.add_post("/v1/batches", create_batch)
    app.router.add_get("/v1/batches", list_batches)
    app.router.add_get("/v1/batches/{batch_id}", retrieve_batch)
    app.router.add_post("/v1/batches/{batch_id}/cancel", cancel_batch)
