"""A bookshelf: add a book (a command), then shelve it when it was added (an event)."""

from pathlib import Path

from protean import Domain, handle
from protean.fields import Boolean, Identifier, String
from protean.utils.globals import current_domain

domain = Domain(root_path=str(Path(__file__).parent), name="bookshelf")  # reads domain.toml there


@domain.aggregate
class Book:
    book_id = Identifier(identifier=True)
    title = String(max_length=200, required=True)
    shelved = Boolean(default=False)


@domain.command(part_of=Book)
class AddBook:
    book_id = Identifier(identifier=True)
    title = String(max_length=200, required=True)


@domain.event(part_of=Book)
class BookAdded:
    book_id = Identifier(identifier=True)
    title = String(max_length=200)


@domain.command_handler(part_of=Book)
class BookCommands:
    @handle(AddBook)
    def add(self, command: AddBook) -> None:
        book = Book(book_id=command.book_id, title=command.title)
        book.raise_(BookAdded(book_id=command.book_id, title=command.title))
        current_domain.repository_for(Book).add(book)


@domain.event_handler(part_of=Book)
class Shelf:
    @handle(BookAdded)
    def shelve(self, event: BookAdded) -> None:
        books = current_domain.repository_for(Book)
        book = books.get(event.book_id)
        book.shelved = True
        books.add(book)
