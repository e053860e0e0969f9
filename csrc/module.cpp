// The Python module stegafast._C. Loading it runs the static operator
// registrations; it carries no tensor functions of its own (those are reached
// through torch.ops.stegafast), only the facts needed to check the build.
#include <Python.h>

#include "common/cpu_variants.h"

#ifndef STEGAFAST_TORCH_VERSION
#define STEGAFAST_TORCH_VERSION "unknown"
#endif

// Which build of the CPU kernels runs on this machine: "avx2" or "baseline".
static PyObject* cpu_variant(PyObject*, PyObject*) {
  return PyUnicode_FromString(stegafast::cpu::has_avx2_fma() ? "avx2" : "baseline");
}

// Why STEGAFAST_CPU_VARIANT was not followed as written, or None.
static PyObject* cpu_variant_note(PyObject*, PyObject*) {
  const char* note = stegafast::cpu::variant_note();
  if (note[0] == '\0') Py_RETURN_NONE;
  return PyUnicode_FromString(note);
}

static PyMethodDef stegafast_methods[] = {
    {"cpu_variant", cpu_variant, METH_NOARGS, "The build of the CPU kernels in use."},
    {"cpu_variant_note", cpu_variant_note, METH_NOARGS,
     "Why STEGAFAST_CPU_VARIANT was not followed as written (an unknown value, avx2 unavailable), or None."},
    {nullptr, nullptr, 0, nullptr}};

static struct PyModuleDef stegafast_module = {
    PyModuleDef_HEAD_INIT, "_C", "stegafast native kernels (registered as torch.ops.stegafast)", -1, stegafast_methods};

PyMODINIT_FUNC PyInit__C(void) {
  PyObject* module = PyModule_Create(&stegafast_module);
  if (module == nullptr) return nullptr;
  if (PyModule_AddStringConstant(module, "torch_version", STEGAFAST_TORCH_VERSION) < 0 ||
#ifdef STEGAFAST_WITH_CUDA
      PyModule_AddIntConstant(module, "with_cuda", 1) < 0
#else
      PyModule_AddIntConstant(module, "with_cuda", 0) < 0
#endif
  ) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
