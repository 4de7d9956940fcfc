"""Issue 12 item 5: one table of AADSTS causes and fixes for `check`, `authorize` and the log. An
unknown client id (AADSTS700016) used to send the admin of `authorize --device` off to make a new
client secret, while `check` named the client id."""
from conftest import MAILBOX  # noqa: F401  (the fixtures come from conftest)


def test_authorize_device_with_an_unknown_client_id_names_the_client_id(relay, standin):
    relay.accounts["office"].update(client_id="3f1c2a5e-0000-4c1e-9a7f-2b6d0e9c4a11",
                                    authorize_url=standin.sign_in_url("authorize"),
                                    devicecode_url=standin.sign_in_url("devicecode"))
    result = relay.run("authorize", "--account", "office", "--device", "--timeout", "5")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "AADSTS700016" in result.stderr
    assert "client id is not known" in result.stderr and "client_id" in result.stderr, result.stderr
    assert "new client secret" not in result.stderr
