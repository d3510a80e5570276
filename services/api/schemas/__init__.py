"""The API's public response models: what each route answers, as typed models that `/openapi.json` carries.

The views are built as plain dicts (shared/domain/views.py, shared/domain/batches.py, shared/webhooks/...) so that
webhooks carry exactly what the API shows; these models validate those views on their way out (and the CLI reads
responses with them), so a view that drifts from its model fails loudly instead of silently changing the contract.
Every model keeps unknown keys (`extra="allow"`): a field added to a view reaches clients before its model names it.
"""
