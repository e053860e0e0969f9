"""The one exception the data layer raises for problems with the user's files."""


class DataError(Exception):
    """A missing or empty image folder, or a file that is not a readable image.

    The message names the path and the problem in one line, so a command can
    print it as is (``stegafast.cli`` turns it into an error line and exit 2).
    Raised inside a DataLoader worker it reaches the main process as a
    DataError whose message also holds the worker's traceback; its last line is
    the original message.
    """
