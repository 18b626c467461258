"""placeholder"""


class SoEmulator:  # replaced below
    pass
