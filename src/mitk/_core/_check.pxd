# PRIVATE: mitkbuf status codes -> Python exceptions.
cdef int check(int status) except -1 nogil
cdef int raise_status(int status, str what) except -1
