# PRIVATE: the supported pixel component types.
cpdef object check_dtype(object dtype, str argument=*)
cdef bytes format_of(object dtype)
