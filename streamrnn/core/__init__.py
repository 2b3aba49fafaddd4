"""The compiled core: cell equations, parameter layout, Numba kernels, their threads,
and the seam (:mod:`streamrnn.core.backend`) through which the Python layer reaches
them. A backend for another device (numba.cuda) lives here beside the CPU one."""
