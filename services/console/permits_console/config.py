"""Settings of the console process (`PERMITS_*`): where the services are, the session secret,
how often one client may look a status up."""

from __future__ import annotations

from pydantic import Field, SecretStr

from permits_common.settings import CommonSettings


class ConsoleSettings(CommonSettings):
    """The console owns no data: it needs the intake URL, a session secret and its limits."""

    console_port: int = 8000
    intake_url: str = "http://127.0.0.1:8001"
    rights_url: str = "http://127.0.0.1:8003"
    console_public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where applicants reach the console (printed on the acceptance receipt)",
    )
    console_session_secret: SecretStr = Field(
        default=SecretStr("dev-console-session-secret"),
        description="Signs the session cookie; refused in production while a development one",
    )
    console_session_hours: float = Field(default=8.0, gt=0, le=24)
    console_request_timeout_seconds: float = Field(default=10.0, gt=0)
    status_lookups_per_minute: float = Field(
        default=20.0, gt=0, description="Applicant status look-ups one client may make per minute"
    )
    status_lookup_burst: int = Field(default=10, ge=1)
    console_trusted_proxies: str = Field(
        default="127.0.0.1",
        description="Addresses whose X-Forwarded-For names the client (comma-separated, or *): "
        "behind a reverse proxy the status look-up limit must count applicants, not the proxy",
    )

    @property
    def secure_cookies(self) -> bool:
        """Cookies only over HTTPS in production; the local stack serves plain HTTP."""
        return self.env == "production"
