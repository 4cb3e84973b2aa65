"""One module per format: header parsing in Python, samples via ``ecgingest._ext``."""
