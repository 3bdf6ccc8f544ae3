# PRIVATE: sequentially consistent atomic counters for export counts and accessor state.
# Counters touched from several threads (views released by another thread's garbage collector,
# free-threaded CPython) must be atomic: CPython's own memoryview export counter races there
# (cpython #127716).
cdef extern from *:
    """
    #if defined(_MSC_VER) && !defined(__clang__)
    #include <intrin.h>
    static inline Py_ssize_t mitk_atomic_add(Py_ssize_t *p, Py_ssize_t v) {
        return (Py_ssize_t)_InterlockedExchangeAdd64((volatile __int64 *)p, (__int64)v) + v; }
    static inline Py_ssize_t mitk_atomic_load(Py_ssize_t *p) {
        return (Py_ssize_t)_InterlockedOr64((volatile __int64 *)p, 0); }
    static inline void mitk_atomic_store(Py_ssize_t *p, Py_ssize_t v) {
        _InterlockedExchange64((volatile __int64 *)p, (__int64)v); }
    static inline Py_ssize_t mitk_atomic_exchange(Py_ssize_t *p, Py_ssize_t v) {
        return (Py_ssize_t)_InterlockedExchange64((volatile __int64 *)p, (__int64)v); }
    #else
    static inline Py_ssize_t mitk_atomic_add(Py_ssize_t *p, Py_ssize_t v) {
        return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST); }
    static inline Py_ssize_t mitk_atomic_load(Py_ssize_t *p) {
        return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
    static inline void mitk_atomic_store(Py_ssize_t *p, Py_ssize_t v) {
        __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
    static inline Py_ssize_t mitk_atomic_exchange(Py_ssize_t *p, Py_ssize_t v) {
        return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
    #endif
    """
    # Returns the new value.
    Py_ssize_t mitk_atomic_add(Py_ssize_t *p, Py_ssize_t v) noexcept nogil
    Py_ssize_t mitk_atomic_load(Py_ssize_t *p) noexcept nogil
    void mitk_atomic_store(Py_ssize_t *p, Py_ssize_t v) noexcept nogil
    # Returns the previous value.
    Py_ssize_t mitk_atomic_exchange(Py_ssize_t *p, Py_ssize_t v) noexcept nogil
