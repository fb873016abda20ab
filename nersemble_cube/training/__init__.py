"""Training folders written from a cube for the readers avatar methods train with.

- :mod:`.readers`: what each reader (GaussianAvatars, nerfstudio, VHAP, instant-ngp) reads from a folder
- :mod:`.nerf`: NeRF / 3DGS folders written for the chosen reader
- :mod:`.dataset`: training samples read straight from the cube (a PyTorch DataLoader takes them as they are)
"""
