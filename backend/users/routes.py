"""Sign in and out of the dashboard, see who is signed in, change one's password."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status

from prunelab.server.kit.cookies import session_cookie
from prunelab.server.kit.dependencies import SessionDep
from prunelab.server.kit.identity import PrincipalDep, optional_principal
from prunelab.server.models import User
from prunelab.server.settings import get_settings
from prunelab.server.users import service
from prunelab.server.users.schemas import LoginIn, MeOut, PasswordChangeIn
from prunelab.server.users.throttle import LoginThrottle

router = APIRouter(prefix="/api/auth", tags=["auth"])
WRONG = "wrong user name or password"


def _throttle(request: Request) -> LoginThrottle:
    return request.app.state.login_throttle  # one per app: see create_app


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _check_password(request: Request, session: SessionDep, name: str, password: str) -> User | None:
    """The user if the password is right; a client that failed too often is told to wait (429) first."""
    throttle = _throttle(request)
    wait = throttle.wait(_address(request), name)
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many failed sign-ins: try again in {wait.retry_after_s} s",
            headers={"Retry-After": str(wait.retry_after_s)},
        )
    user = service.authenticate_password(session, name, password)
    if user is None:
        throttle.failed(_address(request), name)
    return user


def _sign_in(request: Request, response: Response, session: SessionDep, user: User) -> None:
    settings = get_settings()
    value = service.start_session(session, user, settings.session_max_age_s)
    session_cookie(settings).set(response, value, https=request.url.scheme == "https")


@router.post("/login", responses={401: {"description": WRONG}, 429: {"description": "Too many failed sign-ins."}})
def login(body: LoginIn, request: Request, response: Response, session: SessionDep) -> MeOut:
    """Sign in with a user name and password: sets the session cookie (HttpOnly, SameSite=Strict)."""
    user = _check_password(request, session, body.name, body.password)
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, WRONG)
    _sign_in(request, response, session, user)
    return MeOut(name=user.name, is_admin=user.is_admin, via="session")


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, session: SessionDep) -> Response:
    """Sign out: the session ends on the server and the cookie is cleared."""
    principal = optional_principal(request)
    if principal is not None and principal.session_id is not None:
        service.end_session(session, principal.session_id)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    session_cookie(get_settings()).clear(response, https=request.url.scheme == "https")
    return response


@router.get("/me")
def me(principal: PrincipalDep) -> MeOut:
    """Who this request is made as."""
    return MeOut(name=principal.name, is_admin=principal.is_admin, via=principal.via)


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={403: {"description": "The current password is wrong, or this is not a user."}},
)
def change_password(body: PasswordChangeIn, request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    """Change one's own password: every session of the user ends; a browser that asked gets a new one."""
    if principal.name is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only a user has a password (not the service token)")
    user = _check_password(request, session, principal.name, body.current_password)
    if user is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "current_password is wrong")
    service.set_password(session, user, body.new_password)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    if principal.via == "session":
        _sign_in(request, response, session, user)
    return response
