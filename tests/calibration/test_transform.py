import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyquaternion import Quaternion

from calibration import (
    FrameMismatchError,
    Transform,
    matrix_to_quaternion,
    quaternion_slerp,
    quaternion_to_matrix,
    yaw_from_quaternion,
)

finite = st.floats(-100, 100, allow_nan=False, allow_infinity=False)
quat = st.tuples(*[st.floats(-1, 1, allow_nan=False)] * 4).filter(lambda q: np.linalg.norm(q) > 0.1)


def make(t, q, src, dst):
    return Transform.from_translation_quaternion(t, q, src=src, dst=dst)


@given(st.tuples(finite, finite, finite), quat)
def test_quaternion_matches_pyquaternion(t, q):
    ours = quaternion_to_matrix(q)
    ref = Quaternion(np.asarray(q) / np.linalg.norm(q)).rotation_matrix
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    back = matrix_to_quaternion(ours)
    qn = np.asarray(q) / np.linalg.norm(q)
    assert np.allclose(back, qn, atol=1e-9) or np.allclose(back, -qn, atol=1e-9)


@given(st.tuples(finite, finite, finite), quat)
def test_inverse_roundtrip(t, q):
    a = make(t, q, "lidar", "ego")
    ident = a @ a.inverse()
    assert ident.src == ident.dst == "ego"
    np.testing.assert_allclose(ident.matrix, np.eye(4), atol=1e-9)
    assert a.inverse().inverse().allclose(a)


@settings(max_examples=50)
@given(
    st.tuples(finite, finite, finite),
    quat,
    st.tuples(finite, finite, finite),
    quat,
    st.lists(st.tuples(finite, finite, finite), min_size=1, max_size=20),
)
def test_composition_applies_in_order(t1, q1, t2, q2, pts):
    a_to_b = make(t1, q1, "a", "b")
    b_to_c = make(t2, q2, "b", "c")
    a_to_c = b_to_c @ a_to_b
    assert (a_to_c.src, a_to_c.dst) == ("a", "c")
    p = np.asarray(pts)
    np.testing.assert_allclose(a_to_c.apply(p), b_to_c.apply(a_to_b.apply(p)), atol=1e-8)
    # and matches the devkit's way (pyquaternion rotate + translate)
    ref = (Quaternion(np.asarray(q1) / np.linalg.norm(q1)).rotation_matrix @ p.T).T + np.asarray(t1)
    np.testing.assert_allclose(a_to_b.apply(p), ref, atol=1e-9)


def test_frames_must_meet():
    a = make([1, 2, 3], [1, 0, 0, 0], "lidar", "ego")
    b = make([0, 0, 0], [1, 0, 0, 0], "ego", "global")
    assert (b @ a).dst == "global"
    with pytest.raises(FrameMismatchError, match="does not meet"):
        a @ b
    with pytest.raises(FrameMismatchError):
        a @ a


def test_immutable_and_copies_input():
    m = np.eye(4)
    t = Transform(m, src="a", dst="b")
    m[0, 3] = 5.0
    assert t.translation[0] == 0.0
    with pytest.raises(ValueError):
        t.matrix[0, 0] = 2.0
    with pytest.raises(AttributeError):
        t.src = "c"


def test_rejects_bad_matrices_and_points():
    with pytest.raises(ValueError, match="4x4"):
        Transform(np.eye(3), src="a", dst="b")
    with pytest.raises(ValueError, match="NaN"):
        Transform(np.full((4, 4), np.nan), src="a", dst="b")
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        Transform.identity("a").apply(np.zeros((4, 2)))


def test_slerp_endpoints_and_midpoint():
    q0 = [1.0, 0, 0, 0]
    q1 = [np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)]  # 90 deg about z
    np.testing.assert_allclose(quaternion_slerp(q0, q1, 0.0), q0, atol=1e-12)
    np.testing.assert_allclose(quaternion_slerp(q0, q1, 1.0), q1, atol=1e-12)
    assert yaw_from_quaternion(quaternion_slerp(q0, q1, 0.5)) == pytest.approx(np.pi / 4)
    # short arc: -q1 is the same rotation
    assert yaw_from_quaternion(quaternion_slerp(q0, -np.asarray(q1), 0.5)) == pytest.approx(
        np.pi / 4
    )
    ref = Quaternion.slerp(Quaternion(q0), Quaternion(q1), 0.3)
    np.testing.assert_allclose(quaternion_slerp(q0, q1, 0.3), ref.elements, atol=1e-12)
