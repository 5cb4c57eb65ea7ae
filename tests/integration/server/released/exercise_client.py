"""Run by a released cyberian-client (in its own virtualenv) against a live server.

Usage: python exercise_client.py MODEL_FILE  (CYBERIAN_API_BASE / CYBERIAN_API_KEY set).
Prints one JSON document describing what every call returned.
"""

import hashlib
import json
import sys

import cyberian
from cyberian import ApiError, AuthError, QuotaError, VerificationFailedError

Client = getattr(cyberian, "Cyberian", None) or cyberian.Client
TEXTS = ["the model is a proof", "a text to embed", "and another one", "four", "five"]


def sha(array):
    return hashlib.sha256(array.astype("<f4").tobytes()).hexdigest()


def main():
    out = {}
    client = Client()
    out["health"] = client.health()
    result = client.submit_and_wait(model="tiny", inputs=TEXTS, timeout_sec=120)
    out["job"] = result.job
    out["receipt"] = result.receipt
    out["valid"] = result.verification["valid"]
    out["shape"] = list(result.embeddings.shape)
    out["embeddings_sha256"] = sha(result.embeddings)
    out["results"] = client.get_job_results(result.job["id"])
    out["models"] = [model["id"] for model in client.list_models()]
    out["vaas"] = client.verify_outputs(model="tiny", inputs=TEXTS,
                                        claimed_output_commitment=sha(result.embeddings))
    try:
        client.verify_outputs(model="tiny", inputs=TEXTS, claimed_output_commitment="0" * 64)
    except VerificationFailedError as exc:
        out["vaas_failure"] = exc.errors
    try:
        client.submit_job(model="no-such-model", inputs=TEXTS)
    except ApiError as exc:
        out["unknown_model"] = [exc.status_code, exc.body["error"]]
    try:
        client.submit_job(model="tiny", inputs=["x"] * 100_001)  # over every tier's limit
    except QuotaError as exc:
        out["too_large"] = [exc.status_code, exc.body["error"]]
    out["account"] = client.get_account()
    new_key = client.rotate_key()
    second = Client(api_key=new_key)
    out["rotated_account"] = second.get_account()["account_id"]
    client.revoke_key(key_id=new_key.split("_", 2)[2][:12])
    try:
        second.get_account()
    except AuthError as exc:
        out["revoked"] = exc.status_code
    if hasattr(client, "upload_model"):
        out["byom"] = byom(client, sys.argv[1], result.embeddings)
    print(json.dumps(out))


def byom(client, model_file, embeddings):
    uploaded = client.upload_model(model_file, "released-client", 32, "tiny",
                                   description="from the released client")
    again = client.upload_model(model_file, "released-client", 32, "tiny")
    listed = [model["id"] for model in client.list_uploaded_models()]
    job = client.submit_and_wait(model=uploaded["model_id"], inputs=TEXTS, timeout_sec=120)
    blocks = client.verify_outputs(model="tiny", inputs=TEXTS,
                                   claimed_output_commitments=[sha(embeddings)])
    deleted = client.delete_model(uploaded["model_id"])
    return {"uploaded": uploaded, "again": again["model_id"], "listed": listed,
            "job_status": job.job["status"], "job_embeddings_sha256": sha(job.embeddings),
            "blocks_kind": blocks["kind"], "deleted": deleted,
            "after_delete": [model["id"] for model in client.list_uploaded_models()]}


if __name__ == "__main__":
    main()
