"""The JSON management API: its routes, its serializers and its OpenAPI document.

The routes call `service` for the work and `auth` for who is calling; they never read `db/`.
"""
