from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from loyalty_common.auth import principal_of, requires
from loyalty_common.db import TxDep
from loyalty_common.http import problems
from loyalty_common.idempotency import CallerScope, MemberScope, require_idempotency_key
from loyalty_common.pagination import Cursor, Limit
from loyalty_members.consents import service as consents
from loyalty_members.consents.schemas import Consent, ConsentHistory, ConsentRequest
from loyalty_members.context import Ctx
from loyalty_members.identities import service as identities
from loyalty_members.members import service
from loyalty_members.members.queries import load, member_body, parse_member_id
from loyalty_members.members.schemas import IdentityIn, Member, Provider, RegisterRequest, UpdateRequest
from loyalty_members.referrals.queries import ReferralPage, invitees

mutating = [require_idempotency_key]


class MembersController(Controller):
    path = "/v1/members"
    tags = ["members"]
    guards = [requires("member")]

    @post(
        "",
        guards=mutating,
        status_code=201,
        summary="Register a member; 200 with the existing member when the identity is already bound",
        responses=problems(409, 422),
    )
    async def register(
        self, request: Request[Any, Any, Any], data: JSONBody[RegisterRequest], tx: TxDep, ctx: Ctx
    ) -> Response[Member]:
        return await ctx.idempotency.run(
            request,
            tx,
            CallerScope(principal_of(request).name),
            data,
            lambda writes: service.register(ctx, tx, data, writes),
        )

    @get("/lookup", summary="Find a member by channel identity or by phone number", responses=problems(404))
    async def lookup(
        self,
        tx: TxDep,
        ctx: Ctx,
        provider: FromQuery[Provider | None] = None,
        external_id: Annotated[str | None, QueryParameter(max_length=128)] = None,
        phone: Annotated[str | None, QueryParameter(max_length=32)] = None,
    ) -> Member:
        return await service.lookup(ctx, tx, provider=provider, external_id=external_id, phone=phone)

    @get("/{member_id:str}", summary="A member's profile with tier progress", responses=problems(404))
    async def get_member(self, member_id: FromPath[str], tx: TxDep, ctx: Ctx) -> Member:
        return await member_body(ctx, tx, await load(tx, parse_member_id(member_id)))

    @patch(
        "/{member_id:str}",
        guards=mutating,
        summary="Change nickname, birthday or phone",
        responses=problems(404, 409, 422),
    )
    async def update(
        self,
        request: Request[Any, Any, Any],
        member_id: FromPath[str],
        data: JSONBody[UpdateRequest],
        tx: TxDep,
        ctx: Ctx,
    ) -> Response[Member]:
        member = parse_member_id(member_id)
        return await ctx.idempotency.run(
            request,
            tx,
            MemberScope(member),
            data,
            lambda writes: service.update_profile(ctx, tx, member, data, writes),
        )

    @post(
        "/{member_id:str}/identities",
        guards=mutating,
        status_code=201,
        summary="Bind another channel identity (OneID); 200 if already bound to this member",
        responses=problems(404, 409),
    )
    async def bind_identity(
        self,
        request: Request[Any, Any, Any],
        member_id: FromPath[str],
        data: JSONBody[IdentityIn],
        tx: TxDep,
        ctx: Ctx,
    ) -> Response[Member]:
        member = parse_member_id(member_id)
        return await ctx.idempotency.run(
            request,
            tx,
            MemberScope(member),
            data,
            lambda writes: identities.bind(ctx, tx, member, data, writes),
        )

    @post(
        "/{member_id:str}/consents",
        guards=mutating,
        status_code=201,
        summary="Record a consent given or withdrawn, with the policy version",
        responses=problems(404),
    )
    async def record_consent(
        self,
        request: Request[Any, Any, Any],
        member_id: FromPath[str],
        data: JSONBody[ConsentRequest],
        tx: TxDep,
        ctx: Ctx,
    ) -> Response[Consent]:
        member = parse_member_id(member_id)
        return await ctx.idempotency.run(
            request,
            tx,
            MemberScope(member),
            data,
            lambda writes: consents.record(ctx, tx, member, data, writes),
        )

    @get(
        "/{member_id:str}/consents",
        summary="Current consents and their full history",
        responses=problems(404),
    )
    async def consent_history(self, member_id: FromPath[str], tx: TxDep, ctx: Ctx) -> ConsentHistory:
        return await consents.history(ctx, tx, parse_member_id(member_id))

    @get(
        "/{member_id:str}/referrals",
        summary="The member's invitees and their status",
        responses=problems(404),
    )
    async def referrals(
        self, member_id: FromPath[str], tx: TxDep, ctx: Ctx, limit: Limit = 50, cursor: Cursor = None
    ) -> ReferralPage:
        return await invitees(ctx, tx, parse_member_id(member_id), limit=limit, cursor=cursor)
