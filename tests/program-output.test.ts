// How the checks read standard error (conformance/harness/program-output.ts): a stack trace in any
// of the usual languages is seen, a one-line error is not mistaken for one, npm's noise is dropped.
import t from 'tap';
import { codePointName, errorLines, hasStackTrace, rawCharacters } from '../conformance/harness/program-output.ts';

t.test('stack traces are recognised', async (t) => {
  const node = 'Error: boom\n    at Socket.<anonymous> (/srv/client.ts:12:5)\n    at node:events:519:28\n';
  const python = 'Traceback (most recent call last):\n  File "client.py", line 3, in <module>\nConnectionRefusedError: [Errno 111]\n';
  const java = 'Exception in thread "main" java.net.ConnectException\n\tat Client.main(Client.java:9)\n';
  const csharp = 'Unhandled exception. System.Exception: boom\n   at Program.Main()\n';
  for (const [language, text] of Object.entries({ node, python, java, csharp })) t.ok(hasStackTrace(text), language);
  t.notOk(hasStackTrace('error: cannot connect to 127.0.0.1:9 (is the server running?)\n'), 'a one-line error');
  t.notOk(hasStackTrace('error: name taken at the server\n'), '"at" inside a line');
});

t.test('errorLines drops blank lines and npm warnings only', async (t) => {
  t.same(errorLines('npm warn Unknown user config "nodedir".\n\nerror: busy\n  \n'), ['error: busy']);
  t.same(errorLines('error: one\nerror: two\n'), ['error: one', 'error: two']);
});

t.test('rawCharacters names each hostile character printed raw, and none printed escaped', async (t) => {
  const hostile = ['\u001b', '\u0085', '\u2028', '\u202e'];
  t.same(rawCharacters(['users: Lin\u2028e', 'error: Rev\u202egnp \\x1b[2J'], hostile), ['U+2028', 'U+202E'], 'raw on either stream, named as code points, in the order asked');
  t.same(rawCharacters(['users: Lin\\u2028e, Mal\\x1b[2J, Nel\\x85x', ''], hostile), [], 'escaped forms are not raw');
  t.equal(codePointName('\u001b'), 'U+001B');
});
