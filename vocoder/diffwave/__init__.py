"""DiffWave (Kong et al. 2020): network, DDPM schedules, the vocoder and its training parts."""
