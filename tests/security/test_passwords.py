import subprocess
import sys
import textwrap

import pytest

from microback.security import PasswordTooLong, hash_password, needs_rehash, verify_password
from microback.security.passwords import MAX_PASSWORD_BYTES

FAST = 10  # the minimum cost keeps the suite quick; the algorithm is the same


@pytest.fixture(scope="module")
def stored():
    return hash_password("correct horse battery staple", rounds=FAST)


def test_round_trip(stored):
    assert stored.startswith("bcrypt_sha256$$2b$10$")
    assert verify_password("correct horse battery staple", stored, rounds=FAST)
    assert not verify_password("correct horse battery stapler", stored, rounds=FAST)


def test_same_password_hashes_differently():
    assert hash_password("pw", rounds=FAST) != hash_password("pw", rounds=FAST)


@pytest.mark.parametrize("length", [73, 100, MAX_PASSWORD_BYTES])
def test_long_passwords_work(length):
    password = "p" * length
    stored = hash_password(password, rounds=FAST)
    assert verify_password(password, stored, rounds=FAST)
    assert not verify_password(password[:-1] + "q", stored, rounds=FAST)


def test_passwords_differing_after_byte_72_are_different():
    first, second = "x" * 72 + "A", "x" * 72 + "B"
    assert not verify_password(second, hash_password(first, rounds=FAST), rounds=FAST)


@pytest.mark.parametrize("length", [MAX_PASSWORD_BYTES + 1, 1_000_000])
def test_too_long_is_a_400(length):
    with pytest.raises(PasswordTooLong) as caught:
        hash_password("p" * length, rounds=FAST)
    assert caught.value.code == 400
    assert "longer than 4096 bytes" in caught.value.description
    with pytest.raises(PasswordTooLong):
        verify_password("p" * length, None, rounds=FAST)


def test_multibyte_characters_count_as_bytes():
    with pytest.raises(PasswordTooLong):
        hash_password("é" * (MAX_PASSWORD_BYTES // 2 + 1), rounds=FAST)


def test_non_ascii_and_nul_bytes():
    password = "pässwörd\x00ünd 密码"
    stored = hash_password(password, rounds=FAST)
    assert verify_password(password, stored, rounds=FAST)
    assert not verify_password("pässwörd", stored, rounds=FAST)
    assert not verify_password("pässwörd\x00", stored, rounds=FAST)


def test_unknown_account_and_malformed_hashes_are_mismatches():
    assert not verify_password("anything", None, rounds=FAST)
    assert not verify_password("anything", "plaintext", rounds=FAST)
    assert not verify_password("anything", "bcrypt_sha256$garbage", rounds=FAST)


def test_bytes_are_refused():
    with pytest.raises(TypeError, match="must be str"):
        hash_password(b"bytes", rounds=FAST)


def test_needs_rehash_when_cost_changes(stored):
    assert not needs_rehash(stored, rounds=FAST)
    assert needs_rehash(stored, rounds=12)
    assert needs_rehash("pbkdf2_sha256$...", rounds=FAST)


def test_cost_below_ten_is_refused():
    with pytest.raises(ValueError, match="from 10 to 31"):
        hash_password("pw", rounds=4)


def test_hashing_leaves_the_gevent_loop_free():
    # In a gevent-patched process, a greenlet keeps running while another hashes.
    script = textwrap.dedent(
        """
        from gevent import monkey; monkey.patch_all()
        import gevent
        from microback.security import hash_password, verify_password
        ticks = []
        def ticker():
            while True:
                ticks.append(1)
                gevent.sleep(0.001)
        t = gevent.spawn(ticker)
        gevent.sleep(0)
        before = len(ticks)
        stored = hash_password("pw", rounds=12)
        during_hash = len(ticks) - before
        before = len(ticks)
        ok = verify_password("pw", stored, rounds=12)
        during_verify = len(ticks) - before
        t.kill()
        print(during_hash, during_verify, ok)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    during_hash, during_verify, ok = out.stdout.split()
    # Inline bcrypt would leave the ticker at 0 or 1 tick while it holds the loop.
    assert int(during_hash) > 10 and int(during_verify) > 10
    assert ok == "True"
