"""python add_book.py ID TITLE: send one AddBook command."""

import sys

from app import app
from bookshelf import AddBook

if __name__ == "__main__":
    book_id, title = sys.argv[1], sys.argv[2]
    with app.domain.domain_context():
        app.process(AddBook(book_id=book_id, title=title))  # stored, then relayed to the worker at once
    print(f"AddBook {book_id} sent")
