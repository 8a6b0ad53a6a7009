"""The exception hierarchy: one subclass per status, .code and .message."""
from __future__ import annotations

import errno
import os
import pickle
import unittest

import gemfa


class TestErrors(unittest.TestCase):
    def test_one_subclass_per_status(self):
        classes = {}
        for st in gemfa.Status:
            if st == gemfa.Status.OK:
                continue
            err = gemfa.error_for(st, "msg")
            self.assertIsInstance(err, gemfa.Error)
            self.assertIsNot(type(err), gemfa.Error, st.name)
            self.assertEqual(err.code, int(st))
            self.assertEqual(err.message, "msg")
            classes[type(err)] = st
        self.assertEqual(len(classes), len(gemfa.Status) - 1, "classes must be distinct")

    def test_names_and_bases(self):
        self.assertIs(type(gemfa.error_for(15, "")), gemfa.ContextFullError)
        self.assertIs(type(gemfa.error_for(3, "")), gemfa.IoError)
        self.assertIsInstance(gemfa.error_for(1, ""), ValueError)
        self.assertIsInstance(gemfa.error_for(12, ""), ValueError)
        self.assertIsInstance(gemfa.error_for(2, ""), MemoryError)
        self.assertTrue(issubclass(gemfa.ClosedError, gemfa.InvalidArgumentError))

    def test_io_errors_are_os_errors(self):
        io = gemfa.error_for(gemfa.Status.IO, "x: cannot open: Too many levels", "x")
        self.assertIs(type(io), gemfa.IoError)
        self.assertIsInstance(io, OSError)
        self.assertNotIsInstance(io, FileNotFoundError)
        self.assertEqual((io.errno, io.filename), (None, "x"))
        self.assertEqual(io.strerror, "x: cannot open: Too many levels")

        nf = gemfa.error_for(gemfa.Status.NOT_FOUND, "d/config.json: cannot open", "d/config.json")
        self.assertIs(type(nf), gemfa.NotFoundError)
        # FileNotFoundError for new code, IoError for code written for 0.1.0
        self.assertIsInstance(nf, FileNotFoundError)
        self.assertIsInstance(nf, gemfa.IoError)
        self.assertIsInstance(nf, gemfa.Error)
        self.assertEqual(nf.errno, errno.ENOENT)
        self.assertEqual(nf.filename, "d/config.json")
        self.assertEqual(nf.strerror, os.strerror(errno.ENOENT))
        self.assertEqual(nf.message, "d/config.json: cannot open")
        self.assertEqual(str(nf), "GEMFA_ERR_NOT_FOUND: d/config.json: cannot open")
        self.assertEqual(nf.args, ("d/config.json: cannot open",))
        back = pickle.loads(pickle.dumps(nf))
        self.assertIs(type(back), gemfa.NotFoundError)
        self.assertEqual((back.message, back.filename, back.errno),
                         (nf.message, nf.filename, errno.ENOENT))
        # other classes are not OSErrors
        self.assertNotIsInstance(gemfa.error_for(gemfa.Status.FORMAT, ""), OSError)

    def test_str_has_status_name_and_message(self):
        e = gemfa.error_for(gemfa.Status.IO, "cannot open x")
        self.assertEqual(str(e), "GEMFA_ERR_IO: cannot open x")
        self.assertEqual(e.status_name, "GEMFA_ERR_IO")

    def test_unknown_code(self):
        e = gemfa.error_for(99, "strange")
        self.assertIs(type(e), gemfa.Error)
        self.assertEqual(e.code, 99)
        self.assertEqual(e.status_name, "GEMFA_ERR_UNKNOWN")

    def test_pickle_round_trip(self):
        e = gemfa.error_for(gemfa.Status.TEMPLATE, "roles must alternate")
        back = pickle.loads(pickle.dumps(e))
        self.assertIs(type(back), gemfa.TemplateError)
        self.assertEqual((back.code, back.message), (e.code, e.message))


if __name__ == "__main__":
    unittest.main()
