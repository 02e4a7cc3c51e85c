"""The user's identity token as a file the hub keeps fresh (`sciencelab_spawner.server_token`)."""

import stat

from sciencelab_spawner.server_token import write_private_file


def test_the_token_file_is_replaced_whole_and_only_its_owner_reads_it(tmp_path):
    path = tmp_path / "home" / ".sciencelab" / "token"
    write_private_file(path, "first-token")
    assert path.read_text() == "first-token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    write_private_file(path, "renewed-token")
    assert path.read_text() == "renewed-token"
    assert sorted(child.name for child in path.parent.iterdir()) == ["token"]  # no partial file left


def test_the_token_file_belongs_to_the_servers_account(tmp_path):
    path = tmp_path / "bob" / ".sciencelab" / "token"
    write_private_file(path, "token-of-bob", uid=4321, gid=4321)
    assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4321)
    assert path.parent.stat().st_uid == 4321
