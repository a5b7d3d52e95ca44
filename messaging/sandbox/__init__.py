"""The Meta sandbox: a real HTTP server speaking the Graph API subset Setter uses.

Development, end-to-end tests and benchmarks point WHATSAPP_GRAPH_URL at it; production
points it at Meta. `python manage.py meta_sandbox` runs it; tests start it in a thread with
`SandboxThread`. See docs/meta-sandbox.md.
"""
