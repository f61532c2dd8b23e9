"""Microsoft's own Python clients against the m365sync simulator.

Reads one JSON argument {url, tenant_id, client_id, client_secret, ca_cert, certificate, removed}
(the last two: {private_key, certificate, thumbprint} of a certificate registered on the app and of
one that was removed from it) and prints one JSON
object with what msal and msgraph-sdk read. The Rust test that runs this compares it with what the
simulator holds: if Microsoft's client rejects something, the simulator is wrong.
"""

import asyncio
import base64
import json
import sys

import msal
import requests


def session(ca_cert):
    # These machines set REQUESTS_CA_BUNDLE, which would win over `verify`: ignore the environment.
    s = requests.Session()
    s.verify = ca_cert
    s.trust_env = False
    return s


def claims(token):
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))


def with_msal(args):
    scopes = ["https://graph.microsoft.com/.default"]
    authority = f"{args['url']}/{args['tenant_id']}"
    app = msal.ConfidentialClientApplication(
        args["client_id"],
        client_credential=args["client_secret"],
        authority=authority,
        instance_discovery=False,
        http_client=session(args["ca_cert"]),
    )
    first = app.acquire_token_for_client(scopes=scopes)
    if "access_token" not in first:
        raise SystemExit(f"msal got no token: {first}")
    second = app.acquire_token_for_client(scopes=scopes)
    wrong = msal.ConfidentialClientApplication(
        args["client_id"],
        client_credential="Wr0ng~value-of-a-client-secret-0000000000",
        authority=authority,
        instance_discovery=False,
        http_client=session(args["ca_cert"]),
    ).acquire_token_for_client(scopes=scopes)
    return first["access_token"], {
        "token_type": first.get("token_type"),
        "expires_in": first.get("expires_in"),
        "roles": sorted(claims(first["access_token"]).get("roles", [])),
        "tid": claims(first["access_token"]).get("tid"),
        "second_from_cache": second.get("token_source") == "cache",
        "wrong_secret": {"error": wrong.get("error"), "error_codes": wrong.get("error_codes")},
    }


def with_msal_certificate(args):
    """msal signs in with a certificate: PS256 and x5t#S256 when given the public certificate,
    RS256 and x5t when given only a SHA-1 thumbprint (its older, ADFS-compatible form)."""
    scopes = ["https://graph.microsoft.com/.default"]
    authority = f"{args['url']}/{args['tenant_id']}"

    def token_with(credential):
        return msal.ConfidentialClientApplication(
            args["client_id"],
            client_credential=credential,
            authority=authority,
            instance_discovery=False,
            http_client=session(args["ca_cert"]),
        ).acquire_token_for_client(scopes=scopes)

    def summary(result):
        if "access_token" not in result:
            return {"error": result.get("error"), "error_codes": result.get("error_codes")}
        c = claims(result["access_token"])
        return {"tid": c.get("tid"), "appidacr": c.get("appidacr"), "roles": len(c.get("roles", []))}

    cert, removed = args["certificate"], args["removed"]
    return {
        "ps256": summary(token_with({"private_key": cert["private_key"], "public_certificate": cert["certificate"]})),
        "rs256": summary(token_with({"private_key": cert["private_key"], "thumbprint": cert["thumbprint"]})),
        "removed": summary(token_with({"private_key": removed["private_key"], "public_certificate": removed["certificate"]})),
    }


async def with_msgraph(args, token):
    import httpx
    from kiota_abstractions.authentication import (
        AccessTokenProvider,
        AllowedHostsValidator,
        BaseBearerTokenAuthenticationProvider,
    )
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.users.users_request_builder import UsersRequestBuilder
    from msgraph_core import GraphClientFactory, PageIterator

    class MsalToken(AccessTokenProvider):
        async def get_authorization_token(self, uri, additional_authentication_context=None):
            return token

        def get_allowed_hosts_validator(self):
            return AllowedHostsValidator([])

    http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(verify=args["ca_cert"], trust_env=False))
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(MsalToken()), http)
    adapter.base_url = f"{args['url']}/v1.0"
    client = GraphServiceClient(request_adapter=adapter)

    query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
        select=["id", "userPrincipalName", "displayName", "accountEnabled", "userType", "assignedLicenses"], top=50
    )
    config = UsersRequestBuilder.UsersRequestBuilderGetRequestConfiguration(query_parameters=query)
    first_page = await client.users.get(request_configuration=config)
    users = []

    def keep(user):
        users.append({"id": user.id, "upn": user.user_principal_name, "enabled": user.account_enabled, "type": user.user_type})
        return True

    iterator = PageIterator(first_page, adapter)
    await iterator.iterate(keep)

    skus = await client.subscribed_skus.get()
    health = await client.admin.service_announcement.health_overviews.get()
    services = []
    iterator = PageIterator(health, adapter)
    await iterator.iterate(lambda s: services.append({"id": s.id, "status": str(s.status.value) if s.status else None}) or True)
    devices_page = await client.device_management.managed_devices.get()
    devices = []
    iterator = PageIterator(devices_page, adapter)
    await iterator.iterate(lambda d: devices.append({"id": d.id, "compliance": str(d.compliance_state.value) if d.compliance_state else None}) or True)
    return {
        "devices": devices,
        "users": users,
        "skus": sorted(
            [{"part": s.sku_part_number, "consumed": s.consumed_units, "enabled": s.prepaid_units.enabled} for s in skus.value],
            key=lambda s: s["part"],
        ),
        "services": services,
    }


def main():
    args = json.loads(sys.argv[1])
    token, msal_result = with_msal(args)
    graph_result = asyncio.run(with_msgraph(args, token))
    print(json.dumps({"msal": msal_result, "msal_certificate": with_msal_certificate(args), **graph_result}))


if __name__ == "__main__":
    main()
