"""Training folders written from a cube for the readers avatar methods train with.

- :mod:`.nerf`: NeRF / 3DGS folders in VHAP's layout (GaussianAvatars' reader)
"""
